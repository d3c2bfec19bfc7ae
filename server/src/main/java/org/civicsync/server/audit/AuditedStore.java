package org.civicsync.server.audit;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Clock;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Function;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.ReadTx;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.store.WriteTx;

/**
 * A {@link ServerStore} whose every write transaction is audited: the services write through it
 * and never through the plain store, so no change escapes the chain and every projection row gets
 * its scope key. Reads pass straight through.
 */
public final class AuditedStore implements ServerStore {
  private final ServerStore delegate;
  private final Optional<CollectionCatalog> catalog;
  private final Clock clock;
  private final boolean domainEvents;
  private final WriteTimes times;

  private AuditedStore(ServerStore delegate, Optional<CollectionCatalog> catalog, Clock clock, boolean domainEvents, WriteTimes times) {
    this.delegate = delegate;
    this.catalog = catalog;
    this.clock = clock;
    this.domainEvents = domainEvents;
    this.times = times;
  }

  /**
   * The same store, also writing a domain event to the outbox for every change it commits (for
   * the relay to publish). Services that wrap this store keep the setting.
   */
  public AuditedStore withDomainEvents(boolean on) {
    return new AuditedStore(delegate, catalog, clock, on, times);
  }

  /** The same store, telling {@code t} how long each committed write waited and held its tenant's lock. Services that wrap this store keep it. */
  public AuditedStore withWriteTimes(WriteTimes t) {
    return new AuditedStore(delegate, catalog, clock, domainEvents, t);
  }

  /** Audits writes to {@code store}; the catalog gives projection rows their scope keys. */
  public static AuditedStore wrap(ServerStore store, CollectionCatalog catalog, Clock clock) {
    if (store instanceof AuditedStore a) {
      return new AuditedStore(a.delegate, Optional.of(catalog), clock, a.domainEvents, a.times);
    }
    return new AuditedStore(store, Optional.of(catalog), clock, false, WriteTimes.NONE);
  }

  /** Audits writes that never touch records (tenancy and admin actions). */
  public static AuditedStore wrap(ServerStore store, Clock clock) {
    if (store instanceof AuditedStore a) {
      return a;
    }
    return new AuditedStore(store, Optional.empty(), clock, false, WriteTimes.NONE);
  }

  /** The store underneath (for reads a test wants to make without auditing). */
  public ServerStore plain() {
    return delegate;
  }

  /**
   * Runs {@code work} in one audited write transaction of the tenant: whatever it records (log
   * entries, outcomes, inbox changes, admin actions) is sealed into one chained audit entry
   * naming {@code actor}, committed with it.
   */
  public <T> T transact(String tenantId, ObjectNode actor, Function<AuditedTx, T> work) {
    long asked = System.nanoTime();
    long[] locked = new long[1];
    T out = delegate.write(tenantId, tx -> {
      // The store holds the tenant's write lock when the work starts (ServerStore#write).
      locked[0] = System.nanoTime();
      AuditedTx a = new AuditedTx(tx, tenantId, catalog, actor);
      T result = work.apply(a);
      java.time.Instant at = clock.instant();
      a.seal(at);
      if (domainEvents) {
        a.writeEvents(at);
      }
      a.announce();
      return result;
    });
    times.written(locked[0] - asked, System.nanoTime() - locked[0]);
    return out;
  }

  /** A write by the server itself (actor {@code {"kind":"system"}}). */
  @Override
  public <T> T write(String tenantId, Function<WriteTx, T> work) {
    return transact(tenantId, Actors.system(), work::apply);
  }

  // ---------------------------------------------------------------- reads pass through

  @Override
  public boolean createTenant(TenantRow tenant) {
    return delegate.createTenant(tenant);
  }

  @Override
  public Optional<TenantRow> findTenant(String tenantId) {
    return delegate.findTenant(tenantId);
  }

  @Override
  public List<String> tenantIds() {
    return delegate.tenantIds();
  }

  @Override
  public Optional<EnrollmentCodeRow> findEnrollmentCode(String codeHash) {
    return delegate.findEnrollmentCode(codeHash);
  }

  @Override
  public Optional<DeviceRow> findDeviceByTokenHash(String tokenHash) {
    return delegate.findDeviceByTokenHash(tokenHash);
  }

  @Override
  public Optional<DeviceRow> findDevice(UUID deviceId) {
    return delegate.findDevice(deviceId);
  }

  @Override
  public List<DeviceRow> devices(String tenantId) {
    return delegate.devices(tenantId);
  }

  @Override
  public Optional<UserRow> findUser(String tenantId, String userId) {
    return delegate.findUser(tenantId, userId);
  }

  @Override
  public List<UserRow> users(String tenantId) {
    return delegate.users(tenantId);
  }

  @Override
  public List<OrgUnitRow> orgUnits(String tenantId) {
    return delegate.orgUnits(tenantId);
  }

  @Override
  public void insertChallenge(ChallengeRow challenge) {
    delegate.insertChallenge(challenge);
  }

  @Override
  public Optional<ChallengeRow> takeChallenge(UUID deviceId, String challenge, Instant now) {
    return delegate.takeChallenge(deviceId, challenge, now);
  }

  @Override
  public void putScopeSnapshot(String tenantId, String snapshotId, Set<String> keys) {
    delegate.putScopeSnapshot(tenantId, snapshotId, keys);
  }

  @Override
  public Optional<Set<String>> scopeSnapshot(String tenantId, String snapshotId) {
    return delegate.scopeSnapshot(tenantId, snapshotId);
  }

  @Override
  public void markPulled(String tenantId, UUID deviceId, Instant at) {
    delegate.markPulled(tenantId, deviceId, at);
  }

  @Override
  public Optional<String> setting(String key) {
    return delegate.setting(key);
  }

  @Override
  public void putSetting(String key, String value) {
    delegate.putSetting(key, value);
  }

  @Override
  public long head(String tenantId) {
    return delegate.head(tenantId);
  }

  @Override
  public PullPage pull(String tenantId, PullQuery query) {
    return delegate.pull(tenantId, query);
  }

  @Override
  public <T> T read(String tenantId, Function<ReadTx, T> work) {
    return delegate.read(tenantId, work);
  }

  @Override
  public List<LoggedMutation> recordLog(String tenantId, RecordKey key, int limit) {
    return delegate.recordLog(tenantId, key, limit);
  }

  @Override
  public List<InboxItem> inbox(String tenantId, Optional<String> status, Optional<String> kind, Optional<String> collection, int limit) {
    return delegate.inbox(tenantId, status, kind, collection, limit);
  }

  @Override
  public long watermark(String tenantId) {
    return delegate.watermark(tenantId);
  }

  @Override
  public int prunePublishedEvents(Instant cutoff, int limit) {
    return delegate.prunePublishedEvents(cutoff, limit);
  }

  @Override
  public List<org.civicsync.server.store.OutboxEvent> unpublishedEvents(int limit) {
    return delegate.unpublishedEvents(limit);
  }

  @Override
  public void markPublished(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, java.time.Instant at) {
    delegate.markPublished(events, at);
  }

  @Override
  public void markPublishFailed(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, String error) {
    delegate.markPublishFailed(events, error);
  }

  @Override
  public void addTraffic(java.util.Collection<org.civicsync.server.store.DeviceTraffic> traffic) {
    delegate.addTraffic(traffic);
  }

  @Override
  public Optional<PoolStats> poolStats() {
    return delegate.poolStats();
  }

  @Override
  public Waiting waiting() {
    return delegate.waiting();
  }

  @Override
  public EventBacklog eventBacklog() {
    return delegate.eventBacklog();
  }

  @Override
  public Optional<Leadership> tryLead(String role) {
    return delegate.tryLead(role);
  }

  @Override
  public AutoCloseable onCommit(java.util.function.Consumer<org.civicsync.server.store.CommitNotice> listener) {
    return delegate.onCommit(listener);
  }

  @Override
  public org.civicsync.server.store.TenantCounts counts(String tenantId, java.time.Instant since) {
    return delegate.counts(tenantId, since);
  }

  @Override
  public List<OutcomeRow> outcomes(String tenantId, UUID deviceId, long afterSeq, int limit) {
    return delegate.outcomes(tenantId, deviceId, afterSeq, limit);
  }

  @Override
  public List<DeviceKey> devicesWithHoldsBefore(Instant cutoff) {
    return delegate.devicesWithHoldsBefore(cutoff);
  }

  @Override
  public Optional<StoredRecord> findRecord(String tenantId, RecordKey key) {
    return delegate.findRecord(tenantId, key);
  }

  @Override
  public List<StoredRecord> listRecords(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after, int limit) {
    return delegate.listRecords(tenantId, collection, equals, after, limit);
  }

  @Override
  public void ping() {
    delegate.ping();
  }

  @Override
  public void close() {
    delegate.close();
  }
}
