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
    this.store = store;
    this.catalog = catalog;
  }

  /** Rebuilds one tenant's projection in one transaction; returns how many records it holds. */
  public int rebuild(String tenantId) {
    Map<RecordKey, StoredRecord> records = new HashMap<>();
    // Inside the write transaction: no push can slip in between reading the log and replacing
    // the projection.
    store.write(tenantId, tx -> {
      tx.forEachLogged(e -> apply(records, e));
      tx.clearRecords();
      tx.putRecords(records.values());
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
      return null;
    });
    return records.size();
  }

  private static void apply(Map<RecordKey, StoredRecord> records, LoggedMutation e) {
    // Each entry that changed a record carries the state it left; the last one per record stands.
    if (e.after() == null) {
      return;
    }
    RecordKey key = new RecordKey(e.mutation().collection(), e.mutation().recordId());
    records.put(key, StoredRecord.of(key, e.after(), e.seq()));
  }
}
