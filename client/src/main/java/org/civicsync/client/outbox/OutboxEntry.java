package org.civicsync.client.outbox;

import java.time.Instant;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;

/**
 * One local change as the mutation that carries it to the server, signed when it was written (so
 * what was signed offline is what is sent), and where it stands.
 *
 * @param result the server's latest answer, once there is one
 * @param attempts how many pushes carried it
 */
public record OutboxEntry(Mutation mutation, EntryState state, Optional<MutationResult> result, int attempts, Instant createdAt,
    Instant updatedAt) {

  public UUID mutationId() {
    return mutation.mutationId();
  }

  public long deviceSeq() {
    return mutation.deviceSeq();
  }

  public OutboxEntry with(EntryState newState, Optional<MutationResult> newResult, Instant at) {
    return new OutboxEntry(mutation, newState, newResult, attempts, createdAt, at);
  }
}
