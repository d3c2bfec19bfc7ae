package org.civicsync.server.pull;

import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.ApiException;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;

/** Serves pages of a tenant's change feed. */
public final class PullService {
  private final ServerStore store;
  private final CollectionCatalog catalog;
  private final Clock clock;

  public PullService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this.store = store;
    this.catalog = catalog;
    this.clock = clock;
  }

  /**
   * One page after {@code cursor} (from the start when empty).
   *
   * @param limit raw query parameter, empty for the default
   * @param collections raw comma-separated filter, empty for every collection
   * @throws ApiException {@code LIMIT_OUT_OF_RANGE}, {@code CURSOR_INVALID}, {@code INVALID_REQUEST}
   */
  public PullResponse pull(Caller.Device device, Optional<String> cursor, Optional<String> limit, Optional<String> collections) {
    int pageSize = parseLimit(limit);
    Set<String> filter = parseCollections(collections);
    String tenant = device.tenantId();
    Cursor from = cursor.isPresent() && !cursor.get().isEmpty()
        ? Cursor.decode(cursor.get(), tenant, filter)
        : Cursor.start(tenant, filter);
    if (from.seq() > store.head(tenant)) {
      throw new ApiException(ErrorCode.CURSOR_INVALID,
          "the cursor is ahead of this server (was it restored from a backup?); pull again without a cursor", "cursor");
    }
    PullPage page = store.pull(tenant, from.seq(), pageSize, filter);
    List<Change> changes = new ArrayList<>(page.records().size());
    long last = from.seq();
    for (StoredRecord r : page.records()) {
      changes.add(new Change(r.collection(), r.recordId(), r.version(),
          r.deleted() ? ChangeOp.DELETE : ChangeOp.UPSERT, r.data(), r.updatedAt()));
      last = r.seq();
    }
    store.markPulled(tenant, device.deviceId(), clock.instant());
    return new PullResponse(changes, from.at(last).encode(), page.hasMore());
  }

  /**
   * One page of the device's outcomes: final results of its mutations that changed after their
   * first answer (a parked change resolved by a person, a held change applied).
   */
  public OutcomesResponse outcomes(Caller.Device device, Optional<String> cursor, Optional<String> limit) {
    int pageSize = parseLimit(limit);
    String tenant = device.tenantId();
    Cursor from = cursor.isPresent() && !cursor.get().isEmpty()
        ? Cursor.decodeOutcomes(cursor.get(), tenant, device.deviceId())
        : Cursor.outcomesStart(tenant, device.deviceId());
    if (from.seq() > store.head(tenant)) {
      throw new ApiException(ErrorCode.CURSOR_INVALID,
          "the cursor is ahead of this server (was it restored from a backup?); ask again without a cursor", "cursor");
    }
    List<OutcomeRow> rows = store.outcomes(tenant, device.deviceId(), from.seq(), pageSize + 1);
    boolean more = rows.size() > pageSize;
    List<OutcomeRow> page = more ? rows.subList(0, pageSize) : rows;
    long last = page.isEmpty() ? from.seq() : page.get(page.size() - 1).seq();
    return new OutcomesResponse(page.stream().map(OutcomeRow::result).toList(), from.at(last).encode(), more);
  }

  private static int parseLimit(Optional<String> raw) {
    if (raw.isEmpty() || raw.get().isEmpty()) {
      return PullResponse.DEFAULT_LIMIT;
    }
    String s = raw.get();
    if (!s.matches("[0-9]{1,4}") || Integer.parseInt(s) < 1 || Integer.parseInt(s) > PullResponse.MAX_LIMIT) {
      throw new ApiException(ErrorCode.LIMIT_OUT_OF_RANGE,
          "limit must be an integer from 1 to " + PullResponse.MAX_LIMIT + ", got '" + s + "'", "limit");
    }
    return Integer.parseInt(s);
  }

  private Set<String> parseCollections(Optional<String> raw) {
    Set<String> out = new LinkedHashSet<>();
    if (raw.isEmpty() || raw.get().isEmpty()) {
      return out;
    }
    for (String name : raw.get().split(",", -1)) {
      String n = name.trim();
      if (!catalog.contains(n)) {
        throw new ApiException(ErrorCode.INVALID_REQUEST, "unknown collection '" + n + "' in collections", "collections");
      }
      out.add(n);
    }
    return out;
  }
}
