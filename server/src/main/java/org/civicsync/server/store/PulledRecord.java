package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/**
 * A projection row as the change feed reads it: like {@link StoredRecord}, but the record's data is
 * the compact JSON text the store holds, which the feed splices into its pages without parsing it
 * (parsing each row into a tree and writing the tree out again was most of a pull's CPU), and
 * without the field clocks, which the feed never sends.
 *
 * @param dataJson the data as compact JSON text (no whitespace outside strings); {@code null}
 *     exactly when {@code deleted}, as {@link StoredRecord#data()}
 * @param scopeKey the org unit the record belongs to, {@code null} for an unscoped collection
 */
public record PulledRecord(String collection, UUID recordId, long version, boolean deleted, String dataJson, long seq,
    Instant updatedAt, String scopeKey) {

  public PulledRecord {
    if (deleted != (dataJson == null)) {
      throw new IllegalArgumentException("data must be absent exactly when deleted");
    }
  }

  /** The same row, its data written as compact JSON (for stores that hold trees). */
  public static PulledRecord of(StoredRecord r) {
    return new PulledRecord(r.collection(), r.recordId(), r.version(), r.deleted(), r.deleted() ? null : StoreJson.write(r.data()),
        r.seq(), r.updatedAt(), r.scopeKey());
  }

  /** The data as a tree, parsed now; {@code null} for a tombstone. */
  public ObjectNode data() {
    return dataJson == null ? null : StoreJson.object(dataJson);
  }
}
