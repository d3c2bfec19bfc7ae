package org.civicsync.server.app.metrics;

import java.time.Clock;
import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;
import org.civicsync.server.store.DeviceTraffic;
import org.civicsync.server.store.ServerStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Bytes per device and day, counted per request in memory and added to the store in one batch
 * every few seconds (a write per request would cost a commit each on SQLite). A crash loses what
 * was not flushed yet: these are figures for people, and nothing depends on them.
 */
public final class TrafficMeter {
  private static final Logger LOG = LoggerFactory.getLogger(TrafficMeter.class);

  private record Key(String tenantId, UUID deviceId, LocalDate day) {}

  private final ServerStore store;
  private final Clock clock;
  private final Map<Key, LongAdder[]> pending = new ConcurrentHashMap<>();

  public TrafficMeter(ServerStore store, Clock clock) {
    this.store = store;
    this.clock = clock;
  }

  /** One request of a device: its body bytes in and out. */
  public void add(String tenantId, UUID deviceId, long bytesIn, long bytesOut) {
    if (bytesIn <= 0 && bytesOut <= 0) {
      return;
    }
    LongAdder[] a = pending.computeIfAbsent(new Key(tenantId, deviceId, LocalDate.ofInstant(clock.instant(), ZoneOffset.UTC)),
        k -> new LongAdder[] {new LongAdder(), new LongAdder()});
    a[0].add(Math.max(0, bytesIn));
    a[1].add(Math.max(0, bytesOut));
  }

  /** Adds what was counted since the last flush to the store. */
  public synchronized void flush() {
    List<DeviceTraffic> rows = new ArrayList<>();
    for (Key k : List.copyOf(pending.keySet())) {
      LongAdder[] a = pending.remove(k);
      if (a != null) {
        rows.add(new DeviceTraffic(k.tenantId(), k.deviceId(), k.day(), a[0].sumThenReset(), a[1].sumThenReset()));
      }
    }
    try {
      store.addTraffic(rows);
    } catch (RuntimeException e) {
      LOG.warn("could not record device traffic ({} rows); they are dropped: {}", rows.size(), e.getMessage());
    }
  }
}
