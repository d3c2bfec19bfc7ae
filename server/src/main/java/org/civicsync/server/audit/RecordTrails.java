package org.civicsync.server.audit;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.RecordTrail;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.ApiException;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;

/** A record's history from the event log: who, from which device, when, what, with which outcome. */
public final class RecordTrails {
  /** At most this many entries are returned (the oldest first). */
  public static final int MAX_ENTRIES = 10_000;

  private final ServerStore store;
  private final CollectionCatalog catalog;

  public RecordTrails(ServerStore store, CollectionCatalog catalog) {
    this.store = store;
    this.catalog = catalog;
  }

  /** @throws ApiException {@code NOT_FOUND} (no such collection), {@code RECORD_NOT_FOUND} as 404 (never named in this tenant) */
  public RecordTrail trail(String tenantId, String collection, UUID recordId) {
    if (!catalog.contains(collection)) {
      throw new ApiException(ErrorCode.NOT_FOUND, "no collection '" + collection + "'", "collection", 404, null);
    }
    List<LoggedMutation> log = store.recordLog(tenantId, new RecordKey(collection, recordId), MAX_ENTRIES);
    if (log.isEmpty()) {
      throw new ApiException(ErrorCode.RECORD_NOT_FOUND, "no mutation ever named this record", "recordId", 404, null);
    }
    Map<UUID, String> users = new HashMap<>();
    List<RecordTrail.Entry> entries = log.stream().map(e -> {
      String user = users.computeIfAbsent(e.deviceId(), id -> store.findDevice(id).map(DeviceRow::userId).orElse(""));
      var r = e.result();
      return new RecordTrail.Entry(e.seq(), e.receivedAt(), e.mutation().mutationId(), e.deviceId(), user.isEmpty() ? null : user,
          e.mutation().op(), e.mutation().baseVersion(), e.mutation().data(), r.status(),
          e.after() != null ? Long.valueOf(e.after().version()) : null,
          r.error() != null ? r.error().code() : null,
          e.after() != null && !e.after().deleted() ? e.after().data() : null, e.note(), e.compactedAt());
    }).toList();
    return new RecordTrail(collection, recordId, entries);
  }
}
