package org.civicsync.server.projection;

import java.util.HashMap;
import java.util.List;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.rules.ClaimLedger;
import java.util.Map;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;

/**
 * Replays a tenant's event log into a fresh projection from the after-states its entries carry,
 * with the sequence numbers they were given when they arrived, so the rebuilt records are
 * identical and clients' cursors stay valid.
 */
public final class ProjectionRebuilder {
  private final ServerStore store;
  private final CollectionCatalog catalog;

  public ProjectionRebuilder(ServerStore store, CollectionCatalog catalog) {
    this.store = org.civicsync.server.audit.AuditedStore.wrap(store, catalog, java.time.Clock.systemUTC());
    this.catalog = catalog;
  }

  /** Rebuilds one tenant's projection in one transaction; returns how many records it holds. */
  public int rebuild(String tenantId) {
    Map<RecordKey, StoredRecord> records = new HashMap<>();
    Map<RecordKey, String> keys = new HashMap<>();
    List<org.civicsync.server.store.ScopeMove> moves = new java.util.ArrayList<>();
    // Inside the write transaction: no push can slip in between reading the log and replacing
    // the projection.
    store.write(tenantId, tx -> {
      tx.forEachLogged(e -> {
        trackMoves(keys, moves, e);
        apply(records, keys, e);
      });
      tx.clearRecords();
      tx.putRecords(records.values());
      if (!moves.isEmpty()) {
        tx.recordMoves(moves);
      }
      // Claims follow from the records and the collections' current rules.
      Map<RecordKey, List<Claim>> claims = new HashMap<>();
      for (StoredRecord r : records.values()) {
        catalog.find(r.collection()).ifPresent(s -> {
          List<Claim> cs = ClaimLedger.claimsOf(s, r.state());
          if (!cs.isEmpty()) {
            claims.put(r.key(), cs);
          }
        });
      }
      tx.putClaims(claims);
      if (tx.watermark() > 0) {
        // Compaction dropped after-states the moves above are derived from, so the rebuilt moves
        // may miss some: every device downloads again rather than trust them.
        tx.raiseWatermark(tx.head());
      }
      return null;
    });
    return records.size();
  }

  /** The scope moves the log implies, as the write path recorded them when the changes arrived. */
  private void trackMoves(Map<RecordKey, String> keys, List<org.civicsync.server.store.ScopeMove> moves, LoggedMutation e) {
    if (e.after() == null || e.after().deleted()) {
      return;
    }
    RecordKey key = new RecordKey(e.mutation().collection(), e.mutation().recordId());
    String now = catalog.find(key.collection()).map(s -> s.scopeKey(e.after().data())).orElse(null);
    String before = keys.put(key, now);
    if (before != null && !before.equals(now)) {
      moves.add(new org.civicsync.server.store.ScopeMove(e.seq(), key.collection(), key.recordId(), before));
    }
  }

  private static void apply(Map<RecordKey, StoredRecord> records, Map<RecordKey, String> keys, LoggedMutation e) {
    // Each entry that changed a record carries the state it left; the last one per record stands.
    if (e.after() == null) {
      return;
    }
    RecordKey key = new RecordKey(e.mutation().collection(), e.mutation().recordId());
    StoredRecord row = StoredRecord.of(key, e.after(), e.seq());
    // A tombstone stays in the unit the record was in last (the write path does the same).
    records.put(key, e.after().deleted() ? row.withScopeKey(keys.get(key)) : row);
  }
}
