package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;
import org.civicsync.contracts.Mutation;

/**
 * A mutation that arrived before an earlier one of the same device (a gap in deviceSeq), kept
 * until the gap fills or the hold window ends.
 */
public record HeldMutation(UUID deviceId, Mutation mutation, String contentHash, Instant receivedAt) {
  public long deviceSeq() {
    return mutation.deviceSeq();
  }
}
