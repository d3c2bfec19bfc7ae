package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.Arrays;
import java.util.Objects;
import java.util.UUID;

/**
 * A projection row as the change feed reads it: like {@link StoredRecord}, but the record's data is
 * the compact JSON the store holds, as UTF-8 bytes, which the feed copies into its pages without
 * parsing or decoding it (parsing each row into a tree and writing the tree out again was most of a
 * pull's CPU; decoding it into a {@code String} and encoding it back was most of what was left), and
 * without the field clocks, which the feed never sends.
 *
 * @param dataUtf8 the data as compact JSON (no whitespace outside strings) in UTF-8; {@code null}
 *     exactly when {@code deleted}, as {@link StoredRecord#data()}. Not copied: neither the store
 *     that made it nor the feed that reads it changes it.
 * @param scopeKey the org unit the record belongs to, {@code null} for an unscoped collection
 */
public record PulledRecord(String collection, UUID recordId, long version, boolean deleted, byte[] dataUtf8, long seq,
    Instant updatedAt, String scopeKey) {

  public PulledRecord {
    if (deleted != (dataUtf8 == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
  }

  /** The same row, its data written as compact JSON (for stores that hold trees). */
  public static PulledRecord of(StoredRecord r) {
    return new PulledRecord(r.collection(), r.recordId(), r.version(), r.deleted(),
        r.deleted() ? null : StoreJson.write(r.data()).getBytes(StandardCharsets.UTF_8), r.seq(), r.updatedAt(), r.scopeKey());
  }

  /** The data as a tree, parsed now; {@code null} for a tombstone. */
  public ObjectNode data() {
    return dataUtf8 == null ? null : StoreJson.object(text());
  }

  private String text() {
    return dataUtf8 == null ? null : new String(dataUtf8, StandardCharsets.UTF_8);
  }

  // A record compares arrays by identity; two rows with the same data are equal.
  @Override
  public boolean equals(Object o) {
    return o instanceof PulledRecord p && collection.equals(p.collection) && recordId.equals(p.recordId) && version == p.version
        && deleted == p.deleted && Arrays.equals(dataUtf8, p.dataUtf8) && seq == p.seq && Objects.equals(updatedAt, p.updatedAt)
        && Objects.equals(scopeKey, p.scopeKey);
  }

  @Override
  public int hashCode() {
    return Objects.hash(collection, recordId, version, deleted, Arrays.hashCode(dataUtf8), seq, updatedAt, scopeKey);
  }

  @Override
  public String toString() {
    return "PulledRecord[collection=" + collection + ", recordId=" + recordId + ", version=" + version + ", deleted=" + deleted
        + ", data=" + text() + ", seq=" + seq + ", updatedAt=" + updatedAt + ", scopeKey=" + scopeKey + "]";
  }
}
