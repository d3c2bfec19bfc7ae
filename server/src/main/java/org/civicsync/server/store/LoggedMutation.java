package org.civicsync.server.store;

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
 * @param seq the entry's position in the tenant's log; entries that changed a record share it
 *     with the record row they produced
 * @param after the record's state after this mutation, {@code null} when it changed nothing
 * @param note what the server adds to the audit trail of a change it originated, e.g. for a
 *     supervisor's resolution {@code {"inboxItem","resolution","comment"}}; {@code null} for a
 *     device's own mutation
 */
public record LoggedMutation(
    long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt, RecordState after,
    com.fasterxml.jackson.databind.node.ObjectNode note) {

  /** A device's mutation, without a note. */
  public LoggedMutation(
      long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt, RecordState after) {
    this(seq, mutation, contentHash, deviceId, result, receivedAt, after, null);
  }
}
