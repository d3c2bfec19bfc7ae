package org.civicsync.server.projection;

import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.records.MutationRules;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;

/**
 * Replays a tenant's event log into a fresh projection. Applied entries are replayed with the
 * versions, sequence numbers and times they were given when they arrived, so the rebuilt records
 * are identical and clients' cursors stay valid.
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
      return null;
    });
    return records.size();
  }

  private void apply(Map<RecordKey, StoredRecord> records, LoggedMutation e) {
    if (e.result().status() != MutationStatus.APPLIED) {
      return;
    }
    RecordKey key = new RecordKey(e.mutation().collection(), e.mutation().recordId());
    Optional<RecordState> current = Optional.ofNullable(records.get(key)).map(StoredRecord::state);
    RecordState next = MutationRules.replay(catalog, e.mutation(), current, e.result().version(), e.receivedAt());
    records.put(key, StoredRecord.of(key, next, e.seq()));
  }
}
