package org.civicsync.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;

/**
 * A record's state on the server: its version, whether it is a tombstone, and its data ({@code
 * null} exactly when deleted).
 */
public record RecordState(long version, boolean deleted, ObjectNode data, Instant updatedAt) {
  public RecordState {
    if (deleted != (data == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
  }
}
