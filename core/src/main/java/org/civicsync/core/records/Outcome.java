package org.civicsync.core.records;

import java.util.List;
import java.util.Optional;
import org.civicsync.contracts.MutationResult;

/**
 * What one mutation does: its result, the record's next state when it changed the record, and
 * when it was parked, what the supervisor inbox needs to show.
 */
public record Outcome(MutationResult result, Optional<RecordState> next, Optional<Parked> parked) {
  /**
   * A parked change: the three inputs a person needs to settle it.
   *
   * @param base the record as the client saw it; {@code null} when it can no longer be reconstructed
   * @param server the record as the server holds it
   */
  public record Parked(RecordState base, RecordState server, List<String> conflictFields) {}

  /** This outcome with a delete-versus-update resolution noted on a merged result. */
  public Outcome withResolution(String resolution) {
    MutationResult r = result;
    if (r.status() == org.civicsync.contracts.MutationStatus.MERGED) {
      r = MutationResult.merged(r.mutationId(), r.record(), r.overriddenFields(), resolution);
    }
    return new Outcome(r, next, parked);
  }

  public static Outcome of(MutationResult result) {
    return new Outcome(result, Optional.empty(), Optional.empty());
  }
}
