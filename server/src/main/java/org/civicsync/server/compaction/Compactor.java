package org.civicsync.server.compaction;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.civicsync.core.json.Json;
import org.civicsync.server.audit.Actors;
import org.civicsync.server.audit.AuditChain;
import org.civicsync.server.audit.AuditedStore;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Compacts what is older than the horizon, tenant by tenant, in short write transactions over
 * windows of sequence numbers, so devices' pushes wait at most one window's work for the tenant's
 * lock. Each window that changes anything leaves an audit entry ({@code "compaction"}) saying what
 * went. Safe to run again at any time and from any instance (the work is idempotent); the server
 * runs it once a day on one instance at a time.
 *
 * <p>"Older than the horizon" is decided by sequence number: the cut is the last log entry
 * received before {@code now - horizon}, found by a binary search over the log (entries are
 * received in seq order, so their times only grow, up to clock differences between instances).
 */
public final class Compactor {
  private static final Logger LOG = LoggerFactory.getLogger(Compactor.class);
  /** The audit action of one compacted window. */
  public static final String ACTION = "compaction";
  private static final int EVENT_BATCH = 1000;

  private final AuditedStore store;
  private final Clock clock;
  private final Duration horizon;
  private final int window;

  /** What one run did to one tenant. */
  public record Report(String tenantId, long cutSeq, int tombstones, int logEntries, long watermark, int refused) {}

  /**
   * @param horizon how old a change must be before it may be compacted (positive)
   * @param window how many sequence numbers one transaction covers (positive)
   */
  public Compactor(ServerStore store, Clock clock, Duration horizon, int window) {
    if (horizon.isNegative() || horizon.isZero() || window < 1) {
      throw new IllegalArgumentException("the horizon and the window must be positive");
    }
    this.store = AuditedStore.wrap(store, clock);
    this.clock = clock;
    this.horizon = horizon;
    this.window = window;
  }

  /** A compactor with windows of 5,000 sequence numbers. */
  public Compactor(ServerStore store, Clock clock, Duration horizon) {
    this(store, clock, horizon, 5_000);
  }

  /** Compacts every tenant, then prunes published domain events older than the horizon. */
  public List<Report> compactAll() {
    List<Report> out = new ArrayList<>();
    for (String tenant : store.tenantIds()) {
      out.add(compact(tenant));
    }
    Instant cutoff = clock.instant().minus(horizon);
    int pruned;
    do {
      pruned = store.prunePublishedEvents(cutoff, EVENT_BATCH);
    } while (pruned == EVENT_BATCH);
    return out;
  }

  /** Compacts one tenant's changes older than the horizon. */
  public Report compact(String tenantId) {
    Instant cutoff = clock.instant().minus(horizon);
    long cut = cutSeq(tenantId, cutoff);
    int tombstones = 0;
    int entries = 0;
    int refused = 0;
    long watermark = store.watermark(tenantId);
    for (long after = 0; after < cut; after += window) {
      long from = after;
      long through = Math.min(cut, after + window);
      Window w = store.transact(tenantId, Actors.system(), tx -> {
        List<StoredRecord> buried = tx.buryTombstones(from, through);
        long lastMove = tx.dropScopeMoves(from, through);
        Instant now = clock.instant();
        List<LoggedMutation> compacted = new ArrayList<>();
        int bad = 0;
        for (LoggedMutation e : tx.supersededLog(from, through)) {
          // The stored digest is what the audit chain will check from now on: a detail that no
          // longer matches it was altered, and is kept as evidence rather than compacted away.
          if (!AuditChain.detailDigest(e).equals(e.detailDigest())) {
            bad++;
            LOG.error("log entry {} of tenant {}: its detail does not match the digest written with it; not compacted", e.seq(), tenantId);
            continue;
          }
          compacted.add(e.compact(now));
        }
        tx.compactLog(compacted);
        long mark = Math.max(lastMove, buried.stream().mapToLong(StoredRecord::seq).max().orElse(0));
        tx.raiseWatermark(mark);
        if (!buried.isEmpty() || !compacted.isEmpty() || lastMove > 0) {
          ObjectNode action = Json.mapper().createObjectNode().put("type", ACTION).put("afterSeq", from).put("throughSeq", through)
              .put("tombstones", buried.size()).put("logEntries", compacted.size()).put("scopeMovesThrough", lastMove)
              .put("watermark", tx.watermark());
          tx.action(action);
        }
        return new Window(buried.size(), compacted.size(), bad, tx.watermark());
      });
      tombstones += w.tombstones();
      entries += w.entries();
      refused += w.refused();
      watermark = Math.max(watermark, w.watermark());
    }
    Report r = new Report(tenantId, cut, tombstones, entries, watermark, refused);
    if (tombstones + entries > 0) {
      LOG.info("compacted tenant {} through seq {}: {} tombstone(s), {} log entr(ies); watermark {}", tenantId, cut, tombstones, entries,
          watermark);
    }
    return r;
  }

  private record Window(int tombstones, int entries, int refused, long watermark) {}

  /** The seq of the last log entry received before {@code cutoff}, 0 if none. */
  long cutSeq(String tenantId, Instant cutoff) {
    long head = store.head(tenantId);
    return store.read(tenantId, rtx -> {
      long lo = 0; // an entry received before the cutoff (or the start)
      long hi = head + 1; // at or after the cutoff (or past the end)
      while (hi - lo > 1) {
        long mid = lo + (hi - lo) / 2;
        List<LoggedMutation> first = rtx.logged(mid - 1, 1);
        if (first.isEmpty() || first.get(0).seq() >= hi || !first.get(0).receivedAt().isBefore(cutoff)) {
          hi = mid;
        } else {
          lo = first.get(0).seq();
        }
      }
      return lo;
    });
  }
}
