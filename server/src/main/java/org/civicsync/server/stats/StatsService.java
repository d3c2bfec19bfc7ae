package org.civicsync.server.stats;

import java.time.Clock;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import org.civicsync.contracts.Stats;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.TenantCounts;

/** Turns the store's raw counts and device rows into {@link Stats}. */
public final class StatsService {
  private final ServerStore store;
  private final Clock clock;

  public StatsService(ServerStore store, Clock clock) {
    this.store = store;
    this.clock = clock;
  }

  /**
   * The tenant's statistics for mutations received at or after {@code since}; held mutations and
   * open inbox items are counted as they are now, whatever their age. Every device and API client
   * of the tenant is listed, in enrollment order, also those that sent nothing since.
   */
  public Stats stats(String tenantId, Instant since) {
    Instant now = clock.instant();
    TenantCounts counts = store.counts(tenantId, since);
    Map<UUID, Stats.Counts> byDevice = new HashMap<>();
    Map<String, Long> reasons = new TreeMap<>();
    for (TenantCounts.LogCount c : counts.log()) {
      byDevice.merge(c.deviceId(), counts(c), Stats.Counts::plus);
      if (!c.resolution() && c.status().equals("rejected")) {
        reasons.merge(c.errorCode().orElse("UNKNOWN"), c.count(), Long::sum);
      }
    }
    for (TenantCounts.TrafficCount t : counts.traffic()) {
      byDevice.merge(t.deviceId(), new Stats.Counts(0, 0, 0, 0, 0, 0, t.bytesIn(), t.bytesOut()), Stats.Counts::plus);
    }
    Map<UUID, Long> held = new HashMap<>();
    counts.held().forEach(h -> held.merge(h.deviceId(), h.count(), Long::sum));
    Map<UUID, Long> openConflicts = new HashMap<>();
    Map<UUID, Long> openItems = new HashMap<>();
    long tenantConflicts = 0;
    long tenantItems = 0;
    for (TenantCounts.InboxCount i : counts.openInbox()) {
      tenantItems += i.count();
      if (i.kind().equals("conflict")) {
        tenantConflicts += i.count();
      }
      i.deviceId().ifPresent(d -> {
        openItems.merge(d, i.count(), Long::sum);
        if (i.kind().equals("conflict")) {
          openConflicts.merge(d, i.count(), Long::sum);
        }
      });
    }
    Map<UUID, Stats.DeviceStats> devices = new LinkedHashMap<>();
    for (DeviceRow d : store.devices(tenantId)) {
      devices.put(d.deviceId(), new Stats.DeviceStats(d.deviceId(), d.kind(), d.name(), d.userId(), d.revoked(), d.lastPushAt(),
          d.lastPullAt(), byDevice.getOrDefault(d.deviceId(), Stats.Counts.ZERO), held.getOrDefault(d.deviceId(), 0L),
          openConflicts.getOrDefault(d.deviceId(), 0L), openItems.getOrDefault(d.deviceId(), 0L)));
    }
    Stats.Counts totals = byDevice.values().stream().reduce(Stats.Counts.ZERO, Stats.Counts::plus);
    long decided = totals.applied() + totals.merged() + totals.rejected() + totals.conflict();
    Double rate = decided == 0 ? null : (double) (totals.applied() + totals.merged()) / decided;
    return new Stats(tenantId, since, now, totals, rate, reasons, held.values().stream().mapToLong(Long::longValue).sum(),
        tenantConflicts, tenantItems, List.copyOf(devices.values()));
  }

  private static Stats.Counts counts(TenantCounts.LogCount c) {
    long n = c.count();
    if (c.resolution()) {
      return new Stats.Counts(0, 0, 0, 0, 0, n, 0, 0);
    }
    return switch (c.status()) {
      case "applied" -> new Stats.Counts(n, n, 0, 0, 0, 0, 0, 0);
      case "merged" -> new Stats.Counts(n, 0, n, 0, 0, 0, 0, 0);
      case "rejected" -> new Stats.Counts(n, 0, 0, n, 0, 0, 0, 0);
      case "conflict" -> new Stats.Counts(n, 0, 0, 0, n, 0, 0, 0);
      default -> new Stats.Counts(n, 0, 0, 0, 0, 0, 0, 0);
    };
  }
}
