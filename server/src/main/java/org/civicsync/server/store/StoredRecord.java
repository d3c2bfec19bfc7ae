package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Map;
import java.util.UUID;
import org.civicsync.core.records.RecordState;

/**
 * One row of the projection (the read model): a record at its latest state, with the sequence
 * number of the change that produced it. {@code data} is {@code null} exactly for a tombstone;
 * {@code fieldHlc} holds, per field, the clock of the change that last wrote it.
 */
public record StoredRecord(
    String collection, UUID recordId, long version, boolean deleted, ObjectNode data, long seq, Instant updatedAt,
    Map<String, String> fieldHlc) {

  public StoredRecord {
    if (deleted != (data == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
    fieldHlc = Map.copyOf(fieldHlc);
  }

  public static StoredRecord of(RecordKey key, RecordState s, long seq) {
    return new StoredRecord(key.collection(), key.recordId(), s.version(), s.deleted(), s.data(), seq, s.updatedAt(), s.fieldHlc());
  }

  public RecordKey key() {
    return new RecordKey(collection, recordId);
  }

  public RecordState state() {
    return new RecordState(version, deleted, data, updatedAt, fieldHlc);
  }
}
