package org.civicsync.server.pull;

import java.time.Clock;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.ApiException;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PulledRecord;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.MovedRecord;
import java.time.Instant;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.tenancy.Caller;

/** Serves pages of a tenant's change feed. */
public final class PullService {
  private final ServerStore store;
  private final CollectionCatalog catalog;
  private final Clock clock;
  private final ReadAhead readAhead;

  public PullService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this.store = store;
    this.catalog = catalog;
    this.clock = clock;
    this.readAhead = new ReadAhead(store, r -> Thread.ofVirtual().name("pull-read-ahead").start(r));
  }

  /**
   * One page after {@code cursor} (from the start when empty) of the changes the device's user may
   * see: collections their roles may read, records in their org units. When the user's org units
   * changed since the cursor was issued, the next pages first catch up — records that left the
   * scope arrive as {@code remove}, records that entered as {@code upsert} — and the feed then goes
   * on from where it was, without a full download.
   *
   * @param limit raw query parameter, empty for the default
   * @param collections raw comma-separated filter, empty for every collection
   * @throws ApiException {@code LIMIT_OUT_OF_RANGE}, {@code CURSOR_INVALID}, {@code RESYNC_REQUIRED}, {@code INVALID_REQUEST}
   */
  public PullResponse pull(Caller.Device device, Optional<String> cursor, Optional<String> limit, Optional<String> collections) {
    return page(device, cursor, limit, collections).toResponse();
  }

  /**
   * The same page in its wire form, each record's stored JSON text as it is (see {@link FeedPage}):
   * what the HTTP API sends.
   */
  public FeedPage page(Caller.Device device, Optional<String> cursor, Optional<String> limit, Optional<String> collections) {
    int pageSize = parseLimit(limit);
    Set<String> filter = parseCollections(collections);
    String tenant = device.tenantId();
    Set<String> readable = new java.util.TreeSet<>();
    for (String c : filter.isEmpty() ? catalog.names() : filter) {
      if (device.access().may(catalog.find(c).orElseThrow(), org.civicsync.core.access.Action.READ)) {
        readable.add(c);
      }
    }
    org.civicsync.core.access.Scope scope = device.access().scope();
    String snap = scope.isUnrestricted() ? Cursor.EVERYTHING : Cursor.snapshotId(tenant, scope.units().orElseThrow());
    boolean fresh = cursor.isEmpty() || cursor.get().isEmpty();
    Cursor from = fresh ? Cursor.start(tenant, filter).served(snap, Cursor.NONE) : Cursor.decode(cursor.get(), tenant, filter);
    if (fresh) {
      from = from.withReadable(Cursor.readable(readable));
    } else if (!from.readable().equals(Cursor.readable(readable))) {
      throw Cursor.invalid("the collections your roles may read have changed since this cursor was issued: drop the local copy");
    }
    if (from.seq() > 0) {
      // A cursor at 0 is behind every head and has been sent nothing, so it misses nothing
      // compaction removed: only a later one is checked.
      org.civicsync.server.store.FeedBounds bounds = store.feedBounds(tenant);
      if (from.seq() > bounds.head()) {
        throw new ApiException(ErrorCode.CURSOR_INVALID,
            "the cursor is ahead of this server (was it restored from a backup?); pull again without a cursor", "cursor");
      }
      long watermark = bounds.watermark();
      if (from.seq() < watermark) {
        throw new ApiException(ErrorCode.RESYNC_REQUIRED, "changes up to seq " + watermark + " were compacted on this server and this"
            + " cursor is at " + from.seq() + ": drop the records without pending changes and pull again without a cursor", "cursor");
      }
    }
    if (readable.isEmpty()) {
      markPulled(device, false);
      return new FeedPage(List.of(), from.at(store.head(tenant)).encode(), false);
    }
    if (!scope.isUnrestricted() && (fresh || !from.snap().equals(snap) || from.inCatchUp())) {
      store.putScopeSnapshot(tenant, snap, scope.units().orElseThrow());
    }
    FeedPage out;
    if (from.snap().equals(snap) && !from.inCatchUp()) {
      out = feed(tenant, from, pageSize, readable, scope);
    } else if (snap.equals(Cursor.EVERYTHING) || from.snap().equals(Cursor.EVERYTHING)) {
      throw Cursor.invalid("your access changed between everything and some org units since this cursor was issued: drop the local copy");
    } else {
      out = catchUp(tenant, from, snap, pageSize, readable, scope.units().orElseThrow());
    }
    markPulled(device, out.hasMore());
    return out;
  }

  /**
   * How stale a device's {@code lastPullAt} may be while it pages through a long download: its
   * pages are not each worth a write to the database (one per 1,000 records of an initial sync).
   */
  static final java.time.Duration PULL_MARK_EVERY = java.time.Duration.ofSeconds(30);

  /** Records the pull: always after a page that caught the device up, during a download at most every {@link #PULL_MARK_EVERY}. */
  private void markPulled(Caller.Device device, boolean midway) {
    Instant now = clock.instant();
    Instant last = device.row().lastPullAt();
    if (!midway || last == null || !last.plus(PULL_MARK_EVERY).isAfter(now)) {
      store.markPulled(device.tenantId(), device.deviceId(), now);
    }
  }

  /**
   * Where the page after this one starts when the feed has more: the seq of the last item (row or
   * scope move) the page keeps of its merged, seq-ordered items.
   */
  private static java.util.OptionalLong nextPosition(PullPage page, long fromSeq, int pageSize) {
    int count = page.records().size() + page.moves().size();
    if (!page.hasMore() && count <= pageSize) {
      return java.util.OptionalLong.empty();
    }
    long[] seqs = new long[count];
    int i = 0;
    for (PulledRecord r : page.records()) {
      seqs[i++] = r.seq();
    }
    for (MovedRecord m : page.moves()) {
      seqs[i++] = m.move().seq();
    }
    java.util.Arrays.sort(seqs);
    return java.util.OptionalLong.of(count == 0 ? fromSeq : seqs[Math.min(count, pageSize) - 1]);
  }

  /** A change at a position of the feed, or a position passed over without a change. */
  private record Item(long seq, FeedPage.FeedChange change) {}

  private FeedPage feed(String tenant, Cursor from, int pageSize, Set<String> readable, org.civicsync.core.access.Scope scope) {
    Set<String> moveFrom = new java.util.HashSet<>();
    if (!scope.isUnrestricted()) {
      moveFrom.addAll(scope.units().orElseThrow());
      if (!from.prev().equals(Cursor.NONE) && !from.prev().equals(Cursor.EVERYTHING)) {
        moveFrom.addAll(snapshot(tenant, from.prev()));
      }
    }
    PullQuery query = new PullQuery(from.seq(), pageSize, readable, scope.units(), true, moveFrom);
    // A page read ahead that ends the feed is read again: a download always ends on a view taken
    // when its last request arrived, so it never says "caught up" as of a moment before that.
    PullPage page = readAhead.take(tenant, query).filter(p -> nextPosition(p, from.seq(), pageSize).isPresent())
        .orElseGet(() -> store.pull(tenant, query));
    List<Item> items = new ArrayList<>();
    for (PulledRecord r : page.records()) {
      items.add(new Item(r.seq(), change(r)));
    }
    Instant now = clock.instant();
    for (MovedRecord m : page.moves()) {
      boolean stillVisible = m.currentKey().map(scope::covers).orElse(false);
      items.add(new Item(m.move().seq(), stillVisible ? null
          : new FeedPage.FeedChange(m.move().collection(), m.move().recordId(), 0, ChangeOp.REMOVE, null, now)));
    }
    items.sort(java.util.Comparator.comparingLong(Item::seq)); // stable: a row before a move at the same seq
    List<Item> taken = items.size() > pageSize ? items.subList(0, pageSize) : items;
    java.util.OptionalLong after = nextPosition(page, from.seq(), pageSize);
    boolean more = after.isPresent();
    long next = after.orElse(Math.max(from.seq(), page.head()));
    if (more && next > from.seq()) {
      // The device will ask for the next page as soon as it has read this one: read it meanwhile,
      // and the one after it once this one is read.
      readAhead.start(tenant, query.at(next), p -> {
        java.util.OptionalLong n = nextPosition(p, next, pageSize);
        return n.isPresent() && n.getAsLong() > next ? Optional.of(query.at(n.getAsLong())) : Optional.empty();
      });
    }
    List<FeedPage.FeedChange> changes = new ArrayList<>(taken.size());
    Set<String> removed = new java.util.HashSet<>();
    for (Item i : taken) {
      if (i.change() != null && (i.change().op() != ChangeOp.REMOVE || removed.add(i.change().collection() + "/" + i.change().recordId()))) {
        changes.add(i.change());
      }
    }
    return new FeedPage(changes, from.at(next).encode(), more);
  }

  /**
   * Pages through the records whose org unit is in exactly one of the old and new scopes: those
   * only in the old one are removed, those only in the new one (and already behind the cursor)
   * are sent. The feed then resumes at the cursor's position with the new scope, remembering the
   * old one for records that move away later.
   */
  private FeedPage catchUp(String tenant, Cursor from, String snap, int pageSize, Set<String> readable, Set<String> now) {
    Set<String> old = new java.util.HashSet<>(snapshot(tenant, from.snap()));
    long pos = from.inCatchUp() ? from.catchUpPos() : 0;
    Cursor base = from;
    if (from.inCatchUp() && !from.catchUpTarget().equals(snap)) {
      // The scope changed again mid-way: the device may hold records of either earlier scope.
      old.addAll(snapshot(tenant, from.catchUpTarget()));
      String union = Cursor.snapshotId(tenant, old);
      store.putScopeSnapshot(tenant, union, old);
      base = from.served(union, from.prev());
      pos = 0;
    }
    Set<String> gone = new java.util.HashSet<>(old);
    gone.removeAll(now);
    Set<String> added = new java.util.HashSet<>(now);
    added.removeAll(old);
    Set<String> diff = new java.util.HashSet<>(gone);
    diff.addAll(added);
    PullPage page = diff.isEmpty() ? new PullPage(List.of(), List.of(), false, 0)
        : store.pull(tenant, new PullQuery(pos, pageSize, readable, Optional.of(diff), false, Set.of()));
    List<FeedPage.FeedChange> changes = new ArrayList<>();
    Instant at = clock.instant();
    long last = pos;
    for (PulledRecord r : page.records()) {
      last = r.seq();
      if (gone.contains(r.scopeKey())) {
        changes.add(new FeedPage.FeedChange(r.collection(), r.recordId(), 0, ChangeOp.REMOVE, null, at));
      } else if (r.seq() <= base.seq() && !r.deleted()) {
        changes.add(change(r));
      }
    }
    Cursor next = page.hasMore() ? base.catchingUp(last, snap) : base.served(snap, base.snap());
    return new FeedPage(changes, next.encode(), true);
  }

  private Set<String> snapshot(String tenant, String id) {
    return store.scopeSnapshot(tenant, id)
        .orElseThrow(() -> Cursor.invalid("the scope this cursor was issued for is unknown to this server"));
  }

  private static FeedPage.FeedChange change(PulledRecord r) {
    return new FeedPage.FeedChange(r.collection(), r.recordId(), r.version(), r.deleted() ? ChangeOp.DELETE : ChangeOp.UPSERT, r.dataUtf8(),
        r.updatedAt());
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
