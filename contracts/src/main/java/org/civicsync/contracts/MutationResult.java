package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.UUID;

/**
 * The outcome of one mutation, in the same position as the mutation in the push.
 *
 * @param version applied: the record's new version; otherwise {@code null}
 * @param error rejected or conflict: why; otherwise {@code null}
 * @param serverRecord conflict: the record as the server holds it; otherwise {@code null}
 * @param replayed {@code true} when this is the stored result of an earlier identical mutation,
 *     otherwise {@code null} (absent)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record MutationResult(
    UUID mutationId,
    MutationStatus status,
    UUID recordId,
    Long version,
    ErrorDetail error,
    ServerRecord serverRecord,
    Boolean replayed) {

  public static MutationResult applied(UUID mutationId, UUID recordId, long version) {
    return new MutationResult(mutationId, MutationStatus.APPLIED, recordId, version, null, null, null);
  }

  public static MutationResult rejected(UUID mutationId, UUID recordId, ErrorDetail error) {
    return new MutationResult(mutationId, MutationStatus.REJECTED, recordId, null, error, null, null);
  }

  public static MutationResult conflict(
      UUID mutationId, UUID recordId, ErrorDetail error, ServerRecord serverRecord) {
    return new MutationResult(
        mutationId, MutationStatus.CONFLICT, recordId, null, error, serverRecord, null);
  }

  /** This result as a replay of itself. */
  public MutationResult asReplay() {
    return new MutationResult(mutationId, status, recordId, version, error, serverRecord, true);
  }
}
