package org.civicsync.core.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Map;

/**
 * A record's state on the server: its version, whether it is a tombstone, its data ({@code null}
 * exactly when deleted), and for each field the clock of the change that last wrote it (what
 * {@code lastWriterWins} and append-only ordering compare against).
 */
public record RecordState(long version, boolean deleted, ObjectNode data, Instant updatedAt, Map<String, String> fieldHlc) {
  public RecordState {
    if (deleted != (data == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
    fieldHlc = Map.copyOf(fieldHlc);
  }
}
