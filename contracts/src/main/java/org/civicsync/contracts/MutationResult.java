package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;
import java.util.UUID;

/**
 * The outcome of one mutation, in the same position as the mutation in the push. Fields that do
 * not belong to the status are {@code null} (absent on the wire). {@code mutationId} and {@code
 * recordId} are always set, except in the minimal form of a push answer ({@link #withoutIds()}).
 *
 * @param version applied or merged: the record's version after this mutation
 * @param error rejected or conflict: why
 * @param serverRecord conflict: the record as the server holds it
 * @param record merged: the record after the merge, to replace the client's local copy
 * @param overriddenFields merged: fields of the change that did not take effect as sent
 * @param resolution set when a delete met a concurrent update: {@code deleteWins} or
 *     {@code updateWins}
 * @param conflictId conflict: the inbox item holding the parked change
 * @param conflictFields conflict: fields changed on both sides with different values
 * @param waitingFor held: the deviceSeq the server is waiting for
 * @param replayed {@code true} when this is the stored result of an earlier identical mutation
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record MutationResult(
    UUID mutationId,
    MutationStatus status,
    UUID recordId,
    Long version,
    ErrorDetail error,
    ServerRecord serverRecord,
    ServerRecord record,
    List<String> overriddenFields,
    String resolution,
    UUID conflictId,
    List<String> conflictFields,
    Long waitingFor,
    Boolean replayed) {

  public static MutationResult applied(UUID mutationId, UUID recordId, long version) {
    return new MutationResult(mutationId, MutationStatus.APPLIED, recordId, version, null, null, null, null, null, null, null, null, null);
  }

  public static MutationResult merged(
      UUID mutationId, ServerRecord record, List<String> overriddenFields, String resolution) {
    return new MutationResult(mutationId, MutationStatus.MERGED, record.recordId(), record.version(), null, null, record,
        List.copyOf(overriddenFields), resolution, null, null, null, null);
  }

  public static MutationResult rejected(UUID mutationId, UUID recordId, ErrorDetail error) {
    return rejected(mutationId, recordId, error, null);
  }

  /** A rejection that shows the current server record (e.g. an update of a deleted record). */
  public static MutationResult rejected(UUID mutationId, UUID recordId, ErrorDetail error, ServerRecord serverRecord) {
    return new MutationResult(mutationId, MutationStatus.REJECTED, recordId, null, error, serverRecord, null, null, null, null, null, null, null);
  }

  public static MutationResult conflict(
      UUID mutationId, UUID recordId, ErrorDetail error, ServerRecord serverRecord, UUID conflictId, List<String> conflictFields) {
    return new MutationResult(mutationId, MutationStatus.CONFLICT, recordId, null, error, serverRecord, null, null, null,
        conflictId, List.copyOf(conflictFields), null, null);
  }

  /** A rejection a person looked at and left as it was: the first error, with how it was resolved. */
  public static MutationResult dismissed(UUID mutationId, UUID recordId, ErrorDetail error, String resolution) {
    return new MutationResult(mutationId, MutationStatus.REJECTED, recordId, null, error, null, null, null, resolution, null, null, null, null);
  }

  /** Waiting for an earlier mutation of the same device. */
  public static MutationResult held(UUID mutationId, UUID recordId, long waitingFor) {
    return new MutationResult(mutationId, MutationStatus.HELD, recordId, null, null, null, null, null, null, null, null, waitingFor, null);
  }

  /**
   * This result without {@code mutationId} and {@code recordId}: its form in a push answered to
   * {@code Prefer: return=minimal}, where the position of a result gives both.
   */
  public MutationResult withoutIds() {
    return withIds(null, null);
  }

  /** This result with the ids of the mutation it answers (a minimal result, read back by its position). */
  public MutationResult withIds(UUID mutationId, UUID recordId) {
    return new MutationResult(mutationId, status, recordId, version, error, serverRecord, record, overriddenFields, resolution,
        conflictId, conflictFields, waitingFor, replayed);
  }

  /** This result as a replay of itself. */
  public MutationResult asReplay() {
    return new MutationResult(mutationId, status, recordId, version, error, serverRecord, record, overriddenFields,
        resolution, conflictId, conflictFields, waitingFor, true);
  }
}
