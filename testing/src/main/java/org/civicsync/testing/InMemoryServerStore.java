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
  private final Map<String, EnrollmentCodeRow> codes = new HashMap<>();
  private final Map<String, DeviceRow> devicesByToken = new HashMap<>();
  private final Map<String, String> settings = new HashMap<>();

  private static final class Tenant {
    long head;
    final Map<UUID, LoggedMutation> log = new LinkedHashMap<>();
    final TreeMap<Long, StoredRecord> bySeq = new TreeMap<>();
    final Map<RecordKey, StoredRecord> records = new HashMap<>();
    final Map<UUID, InboxItem> inbox = new LinkedHashMap<>();
    final Map<RecordKey, List<Claim>> claims = new HashMap<>();
    final TreeMap<Long, OutcomeRow> outcomes = new TreeMap<>();
    final Map<UUID, Long> progress = new HashMap<>();
    final Map<UUID, HeldMutation> held = new LinkedHashMap<>();

    Tenant copy() {
      Tenant t = new Tenant();
      t.head = head;
      t.log.putAll(log);
      t.bySeq.putAll(bySeq);
      t.records.putAll(records);
      t.inbox.putAll(inbox);
      t.claims.putAll(claims);
      t.outcomes.putAll(outcomes);
      t.progress.putAll(progress);
      t.held.putAll(held);
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
  public void insertEnrollmentCode(EnrollmentCodeRow code) {
    synchronized (lock) {
      codes.put(code.codeHash(), code);
    }
  }

  @Override
  public Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now) {
    synchronized (lock) {
      EnrollmentCodeRow c = codes.get(codeHash);
      if (c == null || !now.isBefore(c.expiresAt()) || c.uses() >= c.maxUses()) {
        return Optional.empty();
      }
      codes.put(codeHash, new EnrollmentCodeRow(c.codeHash(), c.tenantId(), c.label(), c.createdAt(), c.expiresAt(), c.maxUses(), c.uses() + 1));
      return Optional.of(c);
    }
  }

  @Override
  public void insertDevice(DeviceRow device) {
    synchronized (lock) {
      devicesByToken.put(device.tokenHash(), device);
    }
  }

  @Override
  public Optional<DeviceRow> findDeviceByTokenHash(String tokenHash) {
    synchronized (lock) {
      return Optional.ofNullable(devicesByToken.get(tokenHash));
    }
  }

  @Override
  public void markPulled(String tenantId, UUID deviceId, Instant at) {
    synchronized (lock) {
      devicesByToken.replaceAll((h, d) -> d.deviceId().equals(deviceId)
          ? new DeviceRow(d.deviceId(), d.tenantId(), d.name(), d.publicKey(), d.tokenHash(), d.enrolledAt(), d.lastPushAt(), at, d.kind())
          : d);
    }
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
    synchronized (lock) {
      Tenant current = data.get(tenantId);
      if (current == null) {
        throw new IllegalArgumentException("no tenant " + tenantId);
      }
      Tenant draft = current.copy();
      Map<UUID, Instant> pushed = new HashMap<>();
      T result = work.apply(new Tx(draft, pushed));
      data.put(tenantId, draft);
      pushed.forEach((id, at) -> devicesByToken.replaceAll((h, d) -> d.deviceId().equals(id)
          ? new DeviceRow(d.deviceId(), d.tenantId(), d.name(), d.publicKey(), d.tokenHash(), d.enrolledAt(), at, d.lastPullAt(), d.kind())
          : d));
      return result;
    }
  }

  private static final class Tx implements WriteTx {
    private final Tenant t;
    private final long startHead;
    private final Map<UUID, Instant> pushed;

    Tx(Tenant t, Map<UUID, Instant> pushed) {
      this.t = t;
      this.startHead = t.head;
      this.pushed = pushed;
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
        StoredRecord r = t.records.get(k);
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
    public void clearRecords() {
      t.records.clear();
      t.bySeq.clear();
      t.claims.clear();
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
      pushed.put(deviceId, at);
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
  public PullPage pull(String tenantId, long afterSeq, int limit, Set<String> collections) {
    synchronized (lock) {
      Tenant t = data.get(tenantId);
      List<StoredRecord> out = new ArrayList<>();
      if (t == null) {
        return new PullPage(out, false);
      }
      boolean more = false;
      for (StoredRecord r : t.bySeq.tailMap(afterSeq, false).values()) {
        if (!collections.isEmpty() && !collections.contains(r.collection())) {
          continue;
        }
        if (out.size() == limit) {
          more = true;
          break;
        }
        out.add(r);
      }
      return new PullPage(out, more);
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
      return t == null ? Optional.empty() : Optional.ofNullable(t.records.get(key));
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
}
