package org.civicsync.testing;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.function.Function;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.MovedRecord;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.ReadTx;
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.UserRow;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.WriteTx;

/**
 * A {@link ServerStore} in memory, for tests of the services and HTTP layer. One lock serialises
 * everything; a write transaction works on copies and swaps them in only when its work returns, so
 * a throwing transaction leaves nothing behind, as in a database.
 */
public final class InMemoryServerStore implements ServerStore {
  private final Object lock = new Object();
  private final Map<String, TenantRow> tenants = new TreeMap<>();
  private final Map<String, Tenant> data = new HashMap<>();
  private final Map<String, String> settings = new HashMap<>();
  private final Map<UUID, List<ChallengeRow>> challenges = new HashMap<>();
  private final Map<String, Set<String>> snapshots = new HashMap<>();

  private static final class Tenant {
    long head;
    final Map<UUID, LoggedMutation> log = new LinkedHashMap<>();
    final TreeMap<Long, StoredRecord> bySeq = new TreeMap<>();
    final Map<RecordKey, StoredRecord> records = new HashMap<>();
    final Map<UUID, InboxItem> inbox = new LinkedHashMap<>();
    final TreeMap<Long, EventRow> events = new TreeMap<>();
    final Map<RecordKey, List<Claim>> claims = new HashMap<>();
    final TreeMap<Long, OutcomeRow> outcomes = new TreeMap<>();
    final Map<UUID, Long> progress = new HashMap<>();
    final Map<UUID, HeldMutation> held = new LinkedHashMap<>();
    final Map<String, EnrollmentCodeRow> codes = new HashMap<>();
    final Map<UUID, DeviceRow> devices = new LinkedHashMap<>();
    final Map<String, UserRow> users = new TreeMap<>();
    final Map<String, OrgUnitRow> orgUnits = new TreeMap<>();
    final List<ScopeMove> moves = new ArrayList<>();
    final List<AuditEntry> audit = new ArrayList<>();
    AuditHead auditHead = AuditHead.EMPTY;
    final Map<RecordKey, StoredRecord> graveyard = new HashMap<>();
    long watermark;

    Tenant copy() {
      Tenant t = new Tenant();
      t.head = head;
      t.log.putAll(log);
      t.bySeq.putAll(bySeq);
      t.records.putAll(records);
      t.inbox.putAll(inbox);
      t.events.putAll(events);
      t.claims.putAll(claims);
      t.outcomes.putAll(outcomes);
      t.progress.putAll(progress);
      t.held.putAll(held);
      t.codes.putAll(codes);
      t.devices.putAll(devices);
      t.users.putAll(users);
      t.orgUnits.putAll(orgUnits);
      t.moves.addAll(moves);
      t.audit.addAll(audit);
      t.auditHead = auditHead;
      t.graveyard.putAll(graveyard);
      t.watermark = watermark;
      return t;
    }
  }

  @Override
  public boolean createTenant(TenantRow tenant) {
    synchronized (lock) {
      if (tenants.containsKey(tenant.tenantId())) {
        return false;
      }
      tenants.put(tenant.tenantId(), tenant);
      data.put(tenant.tenantId(), new Tenant());
      return true;
    }
  }

  @Override
  public Optional<TenantRow> findTenant(String tenantId) {
    synchronized (lock) {
      return Optional.ofNullable(tenants.get(tenantId));
    }
  }

  @Override
  public List<String> tenantIds() {
    synchronized (lock) {
      return List.copyOf(tenants.keySet());
    }
  }

  @Override
  public Optional<EnrollmentCodeRow> findEnrollmentCode(String codeHash) {
    synchronized (lock) {
      return data.values().stream().map(t -> t.codes.get(codeHash)).filter(java.util.Objects::nonNull).findFirst();
    }
  }

  @Override
  public Optional<DeviceRow> findDeviceByTokenHash(String tokenHash) {
    synchronized (lock) {
      return data.values().stream().flatMap(t -> t.devices.values().stream()).filter(d -> d.tokenHash().equals(tokenHash)).findFirst();
    }
  }

  @Override
  public Optional<DeviceRow> findDevice(UUID deviceId) {
    synchronized (lock) {
      return data.values().stream().map(t -> t.devices.get(deviceId)).filter(java.util.Objects::nonNull).findFirst();
    }
  }

  @Override
  public List<DeviceRow> devices(String tenantId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? List.of() : t.devices.values().stream()
          .sorted(java.util.Comparator.comparing(DeviceRow::enrolledAt).thenComparing(d -> d.deviceId().toString())).toList();
    }
  }

  @Override
  public Optional<UserRow> findUser(String tenantId, String userId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? Optional.empty() : Optional.ofNullable(t.users.get(userId));
    }
  }

  @Override
  public List<UserRow> users(String tenantId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? List.of() : List.copyOf(t.users.values());
    }
  }

  @Override
  public List<OrgUnitRow> orgUnits(String tenantId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? List.of() : List.copyOf(t.orgUnits.values());
    }
  }

  @Override
  public void insertChallenge(ChallengeRow challenge) {
    synchronized (lock) {
      challenges.computeIfAbsent(challenge.deviceId(), k -> new ArrayList<>()).add(challenge);
    }
  }

  @Override
  public Optional<ChallengeRow> takeChallenge(UUID deviceId, String challenge, Instant now) {
    synchronized (lock) {
      List<ChallengeRow> list = challenges.getOrDefault(deviceId, new ArrayList<>());
      Optional<ChallengeRow> found = list.stream().filter(c -> c.challenge().equals(challenge)).findFirst();
      found.ifPresent(list::remove);
      list.removeIf(c -> !c.expiresAt().isAfter(now));
      return found.filter(c -> c.expiresAt().isAfter(now));
    }
  }

  @Override
  public void putScopeSnapshot(String tenantId, String snapshotId, Set<String> keys) {
    synchronized (lock) {
      snapshots.putIfAbsent(tenantId + "\n" + snapshotId, Set.copyOf(keys));
    }
  }

  @Override
  public Optional<Set<String>> scopeSnapshot(String tenantId, String snapshotId) {
    synchronized (lock) {
      return Optional.ofNullable(snapshots.get(tenantId + "\n" + snapshotId));
    }
  }

  @Override
  public void markPulled(String tenantId, UUID deviceId, Instant at) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t != null) {
        t.devices.computeIfPresent(deviceId, (id, d) -> withSyncTimes(d, d.lastPushAt(), at));
      }
    }
  }

  private static DeviceRow withSyncTimes(DeviceRow d, Instant push, Instant pull) {
    return new DeviceRow(d.deviceId(), d.tenantId(), d.name(), d.publicKey(), d.tokenHash(), d.enrolledAt(), push, pull, d.kind(),
        d.userId(), d.tokenExpiresAt(), d.revokedAt());
  }

  @Override
  public Optional<String> setting(String key) {
    synchronized (lock) {
      return Optional.ofNullable(settings.get(key));
    }
  }

  @Override
  public void putSetting(String key, String value) {
    synchronized (lock) {
      settings.put(key, value);
    }
  }

  @Override
  public <T> T write(String tenantId, Function<WriteTx, T> work) {
    T result;
    org.civicsync.server.store.CommitNotice notice;
    synchronized (lock) {
      Tenant current = data.get(tenantId);
      if (current == null) {
        throw new IllegalArgumentException("no tenant " + tenantId);
      }
      Tenant draft = current.copy();
      Tx tx = new Tx(draft, tenantId);
      result = work.apply(tx);
      data.put(tenantId, draft);
      notice = tx.notice;
    }
    if (notice != null) {
      commitListeners.deliver(notice.committedNow());
    }
    return result;
  }

  /** An outbox row with its publishing state. */
  private record EventRow(org.civicsync.server.store.OutboxEvent event, Instant publishedAt, String lastError) {}

  @Override
  public List<org.civicsync.server.store.OutboxEvent> unpublishedEvents(int limit) {
    synchronized (lock) {
      return data.values().stream().flatMap(t -> t.events.values().stream()).filter(r -> r.publishedAt() == null)
          .map(EventRow::event).sorted(java.util.Comparator.comparing(org.civicsync.server.store.OutboxEvent::tenantId)
              .thenComparingLong(org.civicsync.server.store.OutboxEvent::seq))
          .limit(limit).toList();
    }
  }

  @Override
  public void markPublished(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, Instant at) {
    eachEventRow(events, r -> r.publishedAt() != null ? r : new EventRow(r.event(), at, r.lastError()));
  }

  @Override
  public void markPublishFailed(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, String error) {
    eachEventRow(events, r -> {
      org.civicsync.server.store.OutboxEvent x = r.event();
      return new EventRow(new org.civicsync.server.store.OutboxEvent(x.tenantId(), x.seq(), x.eventId(), x.subject(), x.payload(),
          x.createdAt(), x.attempts() + 1), r.publishedAt(), error);
    });
  }

  /** Replaces the stored row of each event that exists by {@code change} of it. */
  private void eachEventRow(java.util.Collection<org.civicsync.server.store.OutboxEvent> events,
      java.util.function.UnaryOperator<EventRow> change) {
    synchronized (lock) {
      for (org.civicsync.server.store.OutboxEvent e : events) {
        Tenant t = data.get(e.tenantId());
        if (t != null) {
          t.events.computeIfPresent(e.seq(), (seq, r) -> change.apply(r));
        }
      }
    }
  }

  private final List<org.civicsync.server.store.DeviceTraffic> traffic = new ArrayList<>();

  @Override
  public void addTraffic(java.util.Collection<org.civicsync.server.store.DeviceTraffic> rows) {
    synchronized (lock) {
      traffic.addAll(rows);
    }
  }

  @Override
  public Optional<PoolStats> poolStats() {
    return Optional.empty(); // no connections to pool
  }

  @Override
  public Waiting waiting() {
    synchronized (lock) {
      return new Waiting(data.values().stream().mapToLong(t -> t.held.size()).sum(),
          data.values().stream().flatMap(t -> t.inbox.values().stream()).filter(i -> i.status().equals("open")).count());
    }
  }

  @Override
  public EventBacklog eventBacklog() {
    List<org.civicsync.server.store.OutboxEvent> pending = unpublishedEvents(Integer.MAX_VALUE);
    return new EventBacklog(pending.size(), pending.stream().map(org.civicsync.server.store.OutboxEvent::createdAt).min(Instant::compareTo));
  }

  @Override
  public Optional<Leadership> tryLead(String role) {
    // One process owns this store: a role is this process's, held by one caller at a time.
    return roles.tryLead(role);
  }

  private final org.civicsync.server.store.LocalRoles roles = new org.civicsync.server.store.LocalRoles();

  @Override
  public AutoCloseable onCommit(java.util.function.Consumer<org.civicsync.server.store.CommitNotice> listener) {
    return commitListeners.add(listener);
  }

  private final org.civicsync.server.store.CommitListeners commitListeners = new org.civicsync.server.store.CommitListeners();

  private static final class Tx implements WriteTx {
    private final Tenant t;
    private final long startHead;
    private final String tenantId;
    private org.civicsync.server.store.CommitNotice notice;

    @Override
    public void announce(org.civicsync.server.store.CommitNotice n) {
      notice = n;
    }

    @Override
    public void appendEvents(List<org.civicsync.server.store.OutboxEvent> events) {
      for (org.civicsync.server.store.OutboxEvent e : events) {
        if (t.events.putIfAbsent(e.seq(), new EventRow(e, null, null)) != null) {
          throw new IllegalStateException("duplicate domain event seq " + e.seq());
        }
      }
    }

    Tx(Tenant t, String tenantId) {
      this.t = t;
      this.startHead = t.head;
      this.tenantId = tenantId;
    }

    @Override
    public void insertEnrollmentCode(EnrollmentCodeRow code) {
      t.codes.put(code.codeHash(), code);
    }

    @Override
    public Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now) {
      EnrollmentCodeRow c = t.codes.get(codeHash);
      if (c == null || !now.isBefore(c.expiresAt()) || c.uses() >= c.maxUses()) {
        return Optional.empty();
      }
      t.codes.put(codeHash, new EnrollmentCodeRow(c.codeHash(), c.tenantId(), c.label(), c.createdAt(), c.expiresAt(), c.maxUses(),
          c.uses() + 1, c.userId()));
      return Optional.of(c);
    }

    @Override
    public void insertDevice(DeviceRow device) {
      if (t.devices.putIfAbsent(device.deviceId(), device) != null) {
        throw new IllegalStateException("device exists: " + device.deviceId());
      }
    }

    @Override
    public void renewToken(UUID deviceId, String tokenHash, Instant expiresAt) {
      t.devices.computeIfPresent(deviceId, (id, d) -> new DeviceRow(d.deviceId(), d.tenantId(), d.name(), d.publicKey(), tokenHash,
          d.enrolledAt(), d.lastPushAt(), d.lastPullAt(), d.kind(), d.userId(), expiresAt, d.revokedAt()));
    }

    @Override
    public boolean revokeDevice(UUID deviceId, Instant at) {
      DeviceRow d = t.devices.get(deviceId);
      if (d == null) {
        return false;
      }
      if (d.revokedAt() == null) {
        t.devices.put(deviceId, new DeviceRow(d.deviceId(), d.tenantId(), d.name(), d.publicKey(), d.tokenHash(), d.enrolledAt(),
            d.lastPushAt(), d.lastPullAt(), d.kind(), d.userId(), d.tokenExpiresAt(), at));
      }
      return true;
    }

    @Override
    public void putUser(UserRow user) {
      t.users.put(user.userId(), user);
    }

    @Override
    public void putOrgUnit(OrgUnitRow unit) {
      t.orgUnits.put(unit.orgUnitId(), unit);
    }

    @Override
    public void recordMoves(List<ScopeMove> moves) {
      t.moves.addAll(moves);
    }

    @Override
    public AuditHead auditHead() {
      return t.auditHead;
    }

    @Override
    public void appendAudit(AuditEntry entry) {
      if (entry.seq() != t.auditHead.seq() + 1 || !entry.prevHash().equals(t.auditHead.hash())) {
        throw new IllegalStateException("audit entry " + entry.seq() + " does not follow the head " + t.auditHead);
      }
      t.audit.add(entry);
      t.auditHead = new AuditHead(entry.seq(), entry.hash());
    }

    @Override
    public long head() {
      return startHead;
    }

    @Override
    public Map<UUID, LoggedMutation> findLogged(Collection<UUID> ids) {
      Map<UUID, LoggedMutation> out = new HashMap<>();
      for (UUID id : ids) {
        LoggedMutation e = t.log.get(id);
        if (e != null) {
          out.put(id, e);
        }
      }
      return out;
    }

    @Override
    public Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys) {
      Map<RecordKey, StoredRecord> out = new HashMap<>();
      for (RecordKey k : keys) {
        StoredRecord r = t.records.getOrDefault(k, t.graveyard.get(k));
        if (r != null) {
          out.put(k, r);
        }
      }
      return out;
    }

    @Override
    public Optional<RecordState> findVersion(RecordKey key, long version) {
      return t.log.values().stream()
          .filter(e -> e.after() != null && e.after().version() == version && e.mutation().recordId().equals(key.recordId())
              && e.mutation().collection().equals(key.collection()))
          .map(LoggedMutation::after).findFirst();
    }

    @Override
    public void openInboxItems(List<InboxItem> items) {
      for (InboxItem i : items) {
        if (t.inbox.putIfAbsent(i.id(), i) != null) {
          throw new IllegalStateException("inbox item exists: " + i.id());
        }
      }
    }

    @Override
    public Optional<InboxItem> findInboxItem(UUID id) {
      return Optional.ofNullable(t.inbox.get(id));
    }

    @Override
    public void resolveInboxItem(UUID id, com.fasterxml.jackson.databind.node.ObjectNode resolution, Instant at) {
      InboxItem i = t.inbox.get(id);
      t.inbox.put(id, new InboxItem(i.id(), i.kind(), "resolved", i.collection(), i.recordId(), i.mutationId(), i.deviceId(),
          i.detail(), i.createdAt(), at, resolution));
    }

    @Override
    public void appendOutcomes(List<OutcomeRow> rows) {
      for (OutcomeRow r : rows) {
        if (r.seq() <= startHead || t.outcomes.putIfAbsent(r.seq(), r) != null) {
          throw new IllegalStateException("outcome out of order: " + r.seq());
        }
      }
    }

    @Override
    public Map<UUID, org.civicsync.contracts.MutationResult> latestOutcomes(Collection<UUID> mutationIds) {
      Map<UUID, org.civicsync.contracts.MutationResult> out = new HashMap<>();
      for (OutcomeRow r : t.outcomes.values()) {
        if (mutationIds.contains(r.result().mutationId())) {
          out.put(r.result().mutationId(), r.result());
        }
      }
      return out;
    }

    @Override
    public DeviceQueue deviceQueue(UUID deviceId) {
      return new DeviceQueue(t.progress.getOrDefault(deviceId, 0L), t.held.values().stream()
          .filter(h -> h.deviceId().equals(deviceId)).sorted(java.util.Comparator.comparingLong(HeldMutation::deviceSeq)).toList());
    }

    @Override
    public void setDeviceProgress(UUID deviceId, long deviceSeq) {
      t.progress.merge(deviceId, deviceSeq, Math::max);
    }

    @Override
    public Map<UUID, HeldMutation> findHeld(Collection<UUID> mutationIds) {
      Map<UUID, HeldMutation> out = new HashMap<>();
      mutationIds.forEach(id -> {
        if (t.held.containsKey(id)) {
          out.put(id, t.held.get(id));
        }
      });
      return out;
    }

    @Override
    public void hold(List<HeldMutation> held) {
      held.forEach(h -> {
        if (t.held.putIfAbsent(h.mutation().mutationId(), h) != null) {
          throw new IllegalStateException("already held: " + h.mutation().mutationId());
        }
      });
    }

    @Override
    public void release(Collection<UUID> mutationIds) {
      mutationIds.forEach(t.held::remove);
    }

    @Override
    public List<StoredRecord> findByFields(String collection, Map<String, String> equals, int limit) {
      return t.records.values().stream()
          .filter(r -> r.collection().equals(collection) && !r.deleted())
          .filter(r -> fieldsEqual(r, equals))
          .sorted(java.util.Comparator.comparing(r -> r.recordId().toString()))
          .limit(limit).toList();
    }

    @Override
    public void appendLog(List<LoggedMutation> entries) {
      for (LoggedMutation e : entries) {
        if (e.seq() <= startHead || t.log.putIfAbsent(e.mutation().mutationId(), e) != null) {
          throw new IllegalStateException("log entry out of order or duplicate: " + e.mutation().mutationId());
        }
      }
    }

    @Override
    public void putRecords(Collection<StoredRecord> records) {
      for (StoredRecord r : records) {
        StoredRecord old = t.records.put(r.key(), r);
        if (old != null) {
          t.bySeq.remove(old.seq());
        }
        t.bySeq.put(r.seq(), r);
      }
    }

    @Override
    public void forEachLogged(Consumer<LoggedMutation> consumer) {
      t.log.values().stream().sorted(java.util.Comparator.comparingLong(LoggedMutation::seq)).forEach(consumer);
    }

    @Override
    public Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims) {
      Map<Claim, Set<UUID>> out = new HashMap<>();
      for (Claim claim : claims) {
        Set<UUID> holders = new java.util.HashSet<>();
        t.claims.forEach((k, cs) -> {
          if (cs.contains(claim)) {
            holders.add(k.recordId());
          }
        });
        out.put(claim, holders);
      }
      return out;
    }

    @Override
    public void putClaims(Map<RecordKey, List<Claim>> claims) {
      claims.forEach((k, cs) -> {
        if (cs.isEmpty()) {
          t.claims.remove(k);
        } else {
          t.claims.put(k, List.copyOf(cs));
        }
      });
    }

    @Override
    public List<StoredRecord> buryTombstones(long afterSeq, long throughSeq) {
      List<StoredRecord> buried = new ArrayList<>(t.bySeq.subMap(afterSeq, false, throughSeq, true).values().stream()
          .filter(StoredRecord::deleted).toList());
      for (StoredRecord r : buried) {
        t.records.remove(r.key());
        t.bySeq.remove(r.seq());
        t.claims.remove(r.key());
        t.graveyard.put(r.key(), r);
      }
      return buried;
    }

    @Override
    public long dropScopeMoves(long afterSeq, long throughSeq) {
      long max = 0;
      for (java.util.Iterator<ScopeMove> it = t.moves.iterator(); it.hasNext();) {
        ScopeMove m = it.next();
        if (m.seq() > afterSeq && m.seq() <= throughSeq) {
          max = Math.max(max, m.seq());
          it.remove();
        }
      }
      return max;
    }

    @Override
    public List<LoggedMutation> supersededLog(long afterSeq, long throughSeq) {
      return t.log.values().stream()
          .filter(e -> e.seq() > afterSeq && e.seq() <= throughSeq && !e.compacted() && e.detailDigest() != null)
          .filter(e -> !t.bySeq.containsKey(e.seq()))
          .sorted(java.util.Comparator.comparingLong(LoggedMutation::seq)).toList();
    }

    @Override
    public void compactLog(List<LoggedMutation> compacted) {
      for (LoggedMutation c : compacted) {
        LoggedMutation old = t.log.get(c.mutation().mutationId());
        if (old == null || old.seq() != c.seq()) {
          throw new IllegalStateException("no log entry " + c.mutation().mutationId() + " at seq " + c.seq());
        }
        t.log.put(c.mutation().mutationId(), c);
      }
    }

    @Override
    public long watermark() {
      return t.watermark;
    }

    @Override
    public void raiseWatermark(long seq) {
      t.watermark = Math.max(t.watermark, seq);
    }

    @Override
    public void clearRecords() {
      t.records.clear();
      t.bySeq.clear();
      t.claims.clear();
      t.moves.clear();
    }

    @Override
    public void advanceHead(long newHead) {
      if (newHead < t.head) {
        throw new IllegalArgumentException("head may not move backwards");
      }
      t.head = newHead;
    }

    @Override
    public void markPushed(UUID deviceId, Instant at) {
      t.devices.computeIfPresent(deviceId, (id, d) -> withSyncTimes(d, at, d.lastPullAt()));
    }
  }

  @Override
  public long watermark(String tenantId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? 0 : t.watermark;
    }
  }

  @Override
  public int prunePublishedEvents(Instant cutoff, int limit) {
    synchronized (lock) {
      int n = 0;
      for (Tenant t : data.values()) {
        for (java.util.Iterator<EventRow> it = t.events.values().iterator(); it.hasNext() && n < limit;) {
          EventRow r = it.next();
          if (r.publishedAt() != null && r.publishedAt().isBefore(cutoff)) {
            it.remove();
            n++;
          }
        }
      }
      return n;
    }
  }

  @Override
  public long head(String tenantId) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? 0 : t.head;
    }
  }

  @Override
  public PullPage pull(String tenantId, PullQuery q) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return new PullPage(List.of(), List.of(), false, 0);
      }
      List<org.civicsync.server.store.PulledRecord> rows = t.bySeq.tailMap(q.afterSeq(), false).values().stream()
          .filter(r -> q.collections().isEmpty() || q.collections().contains(r.collection()))
          .filter(r -> q.visibleKeys().map(keys -> r.scopeKey() == null ? q.includeUnscoped() : keys.contains(r.scopeKey())).orElse(true))
          .limit(q.limit() + 1L).map(org.civicsync.server.store.PulledRecord::of).toList();
      List<MovedRecord> moves = t.moves.stream()
          .filter(m -> m.seq() > q.afterSeq() && q.moveFromKeys().contains(m.fromKey()))
          .filter(m -> q.collections().isEmpty() || q.collections().contains(m.collection()))
          .sorted(java.util.Comparator.comparingLong(ScopeMove::seq))
          .limit(q.limit() + 1L)
          .map(m -> new MovedRecord(m, Optional.ofNullable(t.records.get(new RecordKey(m.collection(), m.recordId())))
              .map(StoredRecord::scopeKey)))
          .toList();
      boolean more = rows.size() > q.limit() || moves.size() > q.limit();
      return new PullPage(rows.subList(0, Math.min(rows.size(), q.limit())), moves.subList(0, Math.min(moves.size(), q.limit())),
          more, t.head);
    }
  }

  @Override
  public <T> T read(String tenantId, Function<ReadTx, T> work) {
    Tenant snapshot;
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        throw new IllegalArgumentException("no tenant " + tenantId);
      }
      snapshot = t.copy();
    }
    return work.apply(new ReadTx() {
      @Override
      public AuditHead auditHead() {
        return snapshot.auditHead;
      }

      @Override
      public List<AuditEntry> audit(long afterSeq, int limit) {
        return snapshot.audit.stream().filter(e -> e.seq() > afterSeq).limit(limit).toList();
      }

      @Override
      public List<LoggedMutation> logged(long afterSeq, int limit) {
        return snapshot.log.values().stream().filter(e -> e.seq() > afterSeq)
            .sorted(java.util.Comparator.comparingLong(LoggedMutation::seq)).limit(limit).toList();
      }

      @Override
      public List<OutcomeRow> outcomeRows(long afterSeq, int limit) {
        return snapshot.outcomes.tailMap(afterSeq, false).values().stream().limit(limit).toList();
      }
    });
  }

  @Override
  public List<LoggedMutation> recordLog(String tenantId, RecordKey key, int limit) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return List.of();
      }
      return t.log.values().stream()
          .filter(e -> e.mutation().collection().equals(key.collection()) && e.mutation().recordId().equals(key.recordId()))
          .sorted(java.util.Comparator.comparingLong(LoggedMutation::seq)).limit(limit).toList();
    }
  }

  @Override
  public org.civicsync.server.store.TenantCounts counts(String tenantId, Instant since) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return new org.civicsync.server.store.TenantCounts(List.of(), List.of(), List.of(), List.of());
      }
      record LogKey(UUID device, String status, Optional<String> code, boolean resolution) {}
      Map<LogKey, Long> log = new LinkedHashMap<>();
      for (LoggedMutation m : t.log.values()) {
        if (!m.receivedAt().isBefore(since)) {
          Optional<String> code = Optional.ofNullable(m.result().error()).map(e -> e.code());
          log.merge(new LogKey(m.deviceId(), m.result().status().wire(), code, m.note() != null), 1L, Long::sum);
        }
      }
      Map<UUID, Long> held = new LinkedHashMap<>();
      t.held.values().forEach(h -> held.merge(h.deviceId(), 1L, Long::sum));
      record InboxKey(Optional<UUID> device, String kind) {}
      Map<InboxKey, Long> inbox = new LinkedHashMap<>();
      t.inbox.values().stream().filter(i -> i.status().equals("open"))
          .forEach(i -> inbox.merge(new InboxKey(Optional.ofNullable(i.deviceId()), i.kind()), 1L, Long::sum));
      return new org.civicsync.server.store.TenantCounts(
          log.entrySet().stream().map(e -> new org.civicsync.server.store.TenantCounts.LogCount(
              e.getKey().device(), e.getKey().status(), e.getKey().code(), e.getKey().resolution(), e.getValue())).toList(),
          held.entrySet().stream().map(e -> new org.civicsync.server.store.TenantCounts.HeldCount(e.getKey(), e.getValue())).toList(),
          inbox.entrySet().stream().map(e -> new org.civicsync.server.store.TenantCounts.InboxCount(
              e.getKey().device(), e.getKey().kind(), e.getValue())).toList(),
          traffic.stream().filter(x -> x.tenantId().equals(tenantId) && !x.day().isBefore(since.atZone(java.time.ZoneOffset.UTC).toLocalDate()))
              .collect(java.util.stream.Collectors.groupingBy(org.civicsync.server.store.DeviceTraffic::deviceId, LinkedHashMap::new,
                  java.util.stream.Collectors.toList()))
              .entrySet().stream().map(e -> new org.civicsync.server.store.TenantCounts.TrafficCount(e.getKey(),
                  e.getValue().stream().mapToLong(org.civicsync.server.store.DeviceTraffic::bytesIn).sum(),
                  e.getValue().stream().mapToLong(org.civicsync.server.store.DeviceTraffic::bytesOut).sum())).toList());
    }
  }

  @Override
  public List<InboxItem> inbox(String tenantId, Optional<String> status, Optional<String> kind, Optional<String> collection, int limit) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return List.of();
      }
      List<InboxItem> all = new ArrayList<>(t.inbox.values());
      java.util.Collections.reverse(all);
      return all.stream()
          .filter(i -> status.map(i.status()::equals).orElse(true))
          .filter(i -> kind.map(i.kind()::equals).orElse(true))
          .filter(i -> collection.map(i.collection()::equals).orElse(true))
          .limit(limit).toList();
    }
  }

  @Override
  public List<DeviceKey> devicesWithHoldsBefore(Instant cutoff) {
    synchronized (lock) {
      List<DeviceKey> out = new ArrayList<>();
      data.forEach((tenant, t) -> t.held.values().stream().filter(h -> h.receivedAt().isBefore(cutoff))
          .map(h -> new DeviceKey(tenant, h.deviceId())).distinct().forEach(out::add));
      return out;
    }
  }

  @Override
  public List<OutcomeRow> outcomes(String tenantId, UUID deviceId, long afterSeq, int limit) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return List.of();
      }
      return t.outcomes.tailMap(afterSeq, false).values().stream().filter(r -> r.deviceId().equals(deviceId)).limit(limit).toList();
    }
  }

  @Override
  public Optional<StoredRecord> findRecord(String tenantId, RecordKey key) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      return t == null ? Optional.empty() : Optional.ofNullable(t.records.getOrDefault(key, t.graveyard.get(key)));
    }
  }

  @Override
  public List<StoredRecord> listRecords(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after, int limit) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      if (t == null) {
        return List.of();
      }
      return t.records.values().stream()
          .filter(r -> r.collection().equals(collection) && !r.deleted())
          .filter(r -> after.map(a -> r.recordId().toString().compareTo(a.toString()) > 0).orElse(true))
          .filter(r -> fieldsEqual(r, equals))
          .sorted(java.util.Comparator.comparing(r -> r.recordId().toString()))
          .limit(limit).toList();
    }
  }

  /** The scalar-field comparison of {@link ServerStore#listRecords}: strings as themselves, others as JSON text. */
  private static boolean fieldsEqual(StoredRecord r, Map<String, String> equals) {
    return equals.entrySet().stream().allMatch(e -> {
      com.fasterxml.jackson.databind.JsonNode v = r.data().get(e.getKey());
      return v != null && !v.isNull() && (v.isTextual() ? v.textValue() : v.toString()).equals(e.getValue());
    });
  }

  @Override
  public void ping() {}

  @Override
  public void close() {}

  /** Direct edits of the stored rows, for the contract's tamper tests. */
  ServerStoreContract.Tampering tampering() {
    return new ServerStoreContract.Tampering() {
      private LoggedMutation at(Tenant t, long seq) {
        return t.log.values().stream().filter(e -> e.seq() == seq).findFirst().orElseThrow();
      }

      private LoggedMutation withSeq(LoggedMutation e, long seq, org.civicsync.contracts.Mutation m) {
        return new LoggedMutation(seq, m, e.contentHash(), e.deviceId(), e.result(), e.receivedAt(), e.after(), e.note(), e.detailDigest(), e.compactedAt());
      }

      @Override
      public void alterLogEntry(String tenantId, long seq) {
        synchronized (lock) {
          Tenant t = data.get(tenantId);
          LoggedMutation e = at(t, seq);
          org.civicsync.contracts.Mutation m = e.mutation();
          t.log.put(m.mutationId(), withSeq(e, seq, new org.civicsync.contracts.Mutation(m.mutationId(), m.deviceSeq(), m.collection(),
              m.recordId(), m.op(), m.baseVersion(), m.data(), "tampered", m.clientTime(), m.signature())));
        }
      }

      @Override
      public void deleteLogEntry(String tenantId, long seq) {
        synchronized (lock) {
          Tenant t = data.get(tenantId);
          t.log.remove(at(t, seq).mutation().mutationId());
        }
      }

      @Override
      public void swapLogEntries(String tenantId, long seqA, long seqB) {
        synchronized (lock) {
          Tenant t = data.get(tenantId);
          LoggedMutation a = at(t, seqA);
          LoggedMutation b = at(t, seqB);
          t.log.put(a.mutation().mutationId(), withSeq(a, seqB, a.mutation()));
          t.log.put(b.mutation().mutationId(), withSeq(b, seqA, b.mutation()));
        }
      }

      @Override
      public void alterAuditEntry(String tenantId, long auditSeq) {
        synchronized (lock) {
          Tenant t = data.get(tenantId);
          t.audit.replaceAll(e -> e.seq() == auditSeq
              ? new AuditEntry(e.seq(), e.at(), e.content().replace("\"v\":2", "\"v\":9"), e.prevHash(), e.hash()) : e);
        }
      }

      @Override
      public void deleteAuditEntry(String tenantId, long auditSeq) {
        synchronized (lock) {
          data.get(tenantId).audit.removeIf(e -> e.seq() == auditSeq);
        }
      }
    };
  }
}
