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
 *
 * <p>{@code scopeKey} is the value of the collection's scope field (the org unit the record
 * belongs to), {@code ""} when a scoped collection's record lacks it, {@code null} for a collection
 * without a scope field. The server's write path sets it; stores keep it and filter pulls by it.
 */
public record StoredRecord(
    String collection, UUID recordId, long version, boolean deleted, ObjectNode data, long seq, Instant updatedAt,
    Map<String, String> fieldHlc, String scopeKey) {

  public StoredRecord {
    if (deleted != (data == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
    fieldHlc = Map.copyOf(fieldHlc);
  }

  /** A row without a scope key; the write path sets it ({@link #withScopeKey}) before storing. */
  public static StoredRecord of(RecordKey key, RecordState s, long seq) {
    return new StoredRecord(key.collection(), key.recordId(), s.version(), s.deleted(), s.data(), seq, s.updatedAt(), s.fieldHlc(), null);
  }

  public StoredRecord withScopeKey(String key) {
    return new StoredRecord(collection, recordId, version, deleted, data, seq, updatedAt, fieldHlc, key);
  }

  public RecordKey key() {
    return new RecordKey(collection, recordId);
  }

  public RecordState state() {
    return new RecordState(version, deleted, data, updatedAt, fieldHlc);
  }
}
