package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.records.RecordState;

/**
 * One entry of the append-only event log: a mutation as first received, its content digest, the
 * device that sent it, the result it got (returned verbatim, marked replayed, on every retry), and
 * the record's state after it when it changed the record. The after-states are what stale changes
 * are merged against (the base at any version) and what projections are rebuilt from.
 *
 * <p>Compaction may later drop an entry's <em>detail</em> — the mutation's {@code data} and
 * {@code signature} and the after-state — once the entry is older than the horizon and no longer
 * produces its record's current state. What identifies the entry and answers a retry (ids, content
 * hash, result) is never dropped, and {@link #detailDigest()} keeps the audit chain's hold on the
 * detail that went.
 *
 * @param seq the entry's position in the tenant's log; entries that changed a record share it
 *     with the record row they produced
 * @param mutation the mutation; without {@code data} and {@code signature} once compacted
 * @param after the record's state after this mutation, {@code null} when it changed nothing or
 *     the entry is compacted
 * @param note what the server adds to the audit trail of a change it originated, e.g. for a
 *     supervisor's resolution {@code {"inboxItem","resolution","comment"}}; {@code null} for a
 *     device's own mutation
 * @param detailDigest the digest of the entry's detail ({@code org.civicsync.server.audit.AuditChain#detailDigest}),
 *     written with the entry; {@code null} for entries logged before stores kept it, which are
 *     never compacted
 * @param compactedAt when compaction dropped the detail; {@code null} while it is there
 */
public record LoggedMutation(
    long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt, RecordState after,
    ObjectNode note, String detailDigest, Instant compactedAt) {

  /** A device's mutation, without a note. */
  public LoggedMutation(
      long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt, RecordState after) {
    this(seq, mutation, contentHash, deviceId, result, receivedAt, after, null, null, null);
  }

  /** An entry as written, before its detail digest is known. */
  public LoggedMutation(
      long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt, RecordState after,
      ObjectNode note) {
    this(seq, mutation, contentHash, deviceId, result, receivedAt, after, note, null, null);
  }

  /** Whether compaction has dropped this entry's detail. */
  public boolean compacted() {
    return compactedAt != null;
  }

  /** The same entry carrying its detail digest. */
  public LoggedMutation withDetailDigest(String digest) {
    return new LoggedMutation(seq, mutation, contentHash, deviceId, result, receivedAt, after, note, digest, compactedAt);
  }

  /** The same entry with its detail dropped at {@code at}: the mutation without data and signature, no after-state. */
  public LoggedMutation compact(Instant at) {
    if (detailDigest == null) {
      throw new IllegalStateException("log entry " + seq + " has no detail digest and cannot be compacted");
    }
    return new LoggedMutation(seq, withoutDetail(mutation), contentHash, deviceId, result, receivedAt, null, note, detailDigest, at);
  }

  /** What of a mutation outlives compaction: all but its {@code data} and {@code signature}. */
  public static Mutation withoutDetail(Mutation m) {
    return new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), m.recordId(), m.op(), m.baseVersion(), null, m.hlc(), m.clientTime(), null);
  }
}
