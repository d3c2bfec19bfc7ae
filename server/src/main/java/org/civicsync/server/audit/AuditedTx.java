package org.civicsync.server.audit;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.canonical.Jcs;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.store.WriteTx;

/**
 * A write transaction that records what it does for the audit chain and gives projection rows
 * their scope keys. Admin actions (users, org units, devices, codes, tokens) are recorded as they
 * happen; services add context with {@link #action}.
 */
public final class AuditedTx implements WriteTx {
  private final WriteTx tx;
  private final String tenantId;
  private final Optional<CollectionCatalog> catalog;
  private ObjectNode actor;
  private final ArrayNode actions = Json.mapper().createArrayNode();
  private final List<LoggedMutation> logged = new ArrayList<>();
  // What the entry says of each of those rows, worked out as the row enters this transaction.
  private final List<LogRef> logRefs = new ArrayList<>();

  private record LogRef(long seq, String digest) {}
  private final List<OutcomeRow> outcomes = new ArrayList<>();
  private final ArrayNode inbox = Json.mapper().createArrayNode();
  private final Map<RecordKey, StoredRecord> known = new HashMap<>();
  // Keys already looked up in this transaction: those not in `known` are known to be absent.
  private final Set<RecordKey> asked = new java.util.HashSet<>();
  private boolean cleared;
  // What the live streams of devices need to hear about this transaction once it commits.
  private final Set<org.civicsync.server.store.CommitNotice.Touch> touched = new java.util.LinkedHashSet<>();
  private final Set<UUID> outcomesFor = new java.util.LinkedHashSet<>();
  private final Set<UUID> revoked = new java.util.LinkedHashSet<>();
  private long advancedTo = -1;

  /** Writes the domain events of this transaction's changes to the outbox (when events are on). */
  void writeEvents(Instant at) {
    List<org.civicsync.server.store.OutboxEvent> events = org.civicsync.server.events.DomainEvents.of(tenantId, logged, at);
    if (!events.isEmpty()) {
      tx.appendEvents(events);
    }
  }

  @Override
  public void appendEvents(List<org.civicsync.server.store.OutboxEvent> events) {
    tx.appendEvents(events);
  }

  AuditedTx(WriteTx tx, String tenantId, Optional<CollectionCatalog> catalog, ObjectNode actor) {
    this.tx = tx;
    this.tenantId = tenantId;
    this.catalog = catalog;
    this.actor = actor;
  }

  /** Adds an action (an object with at least {@code "type"}) to this transaction's audit entry. */
  public void action(ObjectNode action) {
    actions.add(action);
  }

  /**
   * Vouches for rows already in the tables, written before the audit chain existed (see {@link
   * AuditAdoption}); they are bound to this transaction's entry as if written by it.
   */
  void vouch(List<LoggedMutation> log, List<OutcomeRow> rows) {
    logged.addAll(log);
    log.forEach(e -> logRefs.add(new LogRef(e.seq(), AuditChain.logDigestV2(e))));
    outcomes.addAll(rows);
  }

  /** Names who is acting, when it is learned only inside the transaction. */
  public void actor(ObjectNode who) {
    this.actor = who;
  }

  /**
   * Tells the store what this transaction changed for devices' live streams; delivered only if
   * it commits. A rebuild of the projection tells every stream to pull.
   */
  void announce() {
    long head = advancedTo >= 0 ? advancedTo : tx.head();
    if (cleared) {
      tx.announce(new org.civicsync.server.store.CommitNotice(tenantId, head, Set.of(), Set.of(), revoked, true));
    } else if (!touched.isEmpty() || !outcomesFor.isEmpty() || !revoked.isEmpty()) {
      tx.announce(new org.civicsync.server.store.CommitNotice(tenantId, head, touched, outcomesFor, revoked, false));
    }
  }

  @Override
  public void announce(org.civicsync.server.store.CommitNotice notice) {
    tx.announce(notice);
  }

  void seal(Instant at) {
    if (actions.isEmpty() && logged.isEmpty() && outcomes.isEmpty() && inbox.isEmpty()) {
      return;
    }
    AuditHead head = tx.auditHead();
    long seq = head.seq() + 1;
    ObjectNode c = Json.mapper().createObjectNode();
    // Format 2: log rows are bound by AuditChain.logDigestV2, which outlives compaction.
    c.put("v", 2);
    c.put("tenantId", tenantId);
    c.put("seq", seq);
    c.put("at", AuditChain.micros(at));
    c.set("actor", actor);
    if (!actions.isEmpty()) {
      c.set("actions", actions);
    }
    if (!logged.isEmpty()) {
      ArrayNode refs = c.putArray("log");
      logRefs.stream().sorted(Comparator.comparingLong(LogRef::seq))
          .forEach(r -> refs.addObject().put("seq", r.seq()).put("digest", r.digest()));
    }
    if (!outcomes.isEmpty()) {
      ArrayNode refs = c.putArray("outcomes");
      outcomes.stream().sorted(Comparator.comparingLong(OutcomeRow::seq))
          .forEach(r -> refs.addObject().put("seq", r.seq()).put("digest", AuditChain.outcomeDigest(r)));
    }
    if (!inbox.isEmpty()) {
      c.set("inbox", inbox);
    }
    String content = Jcs.canonicalString(c);
    tx.appendAudit(new AuditEntry(seq, at, content, head.hash(), AuditChain.entryHash(head.hash(), content)));
  }

  private static ObjectNode obj(String type) {
    return Json.mapper().createObjectNode().put("type", type);
  }

  // ---------------------------------------------------------------- recorded writes

  @Override
  public void appendLog(List<LoggedMutation> entries) {
    // The detail digest is written with the row so that compaction can later drop the detail and
    // the row still verify against this entry.
    // Both digests of a push's rows are computed on every core: this runs under the tenant's lock.
    List<LoggedMutation> digested = org.civicsync.server.store.RowWork.map(entries,
        e -> e.detailDigest() != null ? e : e.withDetailDigest(AuditChain.detailDigest(e)));
    List<LogRef> refs = org.civicsync.server.store.RowWork.map(digested, e -> new LogRef(e.seq(), AuditChain.logDigestV2OfNewRow(e)));
    tx.appendLog(digested);
    logged.addAll(digested);
    logRefs.addAll(refs);
  }

  @Override
  public List<StoredRecord> buryTombstones(long afterSeq, long throughSeq) {
    return tx.buryTombstones(afterSeq, throughSeq);
  }

  @Override
  public long dropScopeMoves(long afterSeq, long throughSeq) {
    return tx.dropScopeMoves(afterSeq, throughSeq);
  }

  @Override
  public List<LoggedMutation> supersededLog(long afterSeq, long throughSeq) {
    return tx.supersededLog(afterSeq, throughSeq);
  }

  @Override
  public void compactLog(List<LoggedMutation> compacted) {
    tx.compactLog(compacted);
  }

  @Override
  public long watermark() {
    return tx.watermark();
  }

  @Override
  public void raiseWatermark(long seq) {
    tx.raiseWatermark(seq);
  }

  @Override
  public void appendOutcomes(List<OutcomeRow> rows) {
    tx.appendOutcomes(rows);
    outcomes.addAll(rows);
    rows.forEach(r -> outcomesFor.add(r.deviceId()));
  }

  @Override
  public void openInboxItems(List<InboxItem> items) {
    tx.openInboxItems(items);
    for (InboxItem i : items) {
      inbox.addObject().put("opened", i.id().toString()).put("kind", i.kind()).put("collection", i.collection())
          .put("recordId", i.recordId().toString());
    }
  }

  @Override
  public void resolveInboxItem(UUID id, ObjectNode resolution, Instant at) {
    tx.resolveInboxItem(id, resolution, at);
    // How it was resolved, not what: the stored resolution can hold record data (health data must
    // stay erasable from the tables, and the chain keeps only a digest of it).
    inbox.addObject().put("resolved", id.toString()).put("how", resolution.path("resolution").asText())
        .put("resolutionDigest", org.civicsync.core.canonical.Digests.of(resolution));
  }

  @Override
  public void insertEnrollmentCode(EnrollmentCodeRow code) {
    tx.insertEnrollmentCode(code);
    ObjectNode a = obj("enrollmentCode.issued").put("userId", code.userId()).put("expiresAt", AuditChain.micros(code.expiresAt()))
        .put("maxUses", code.maxUses());
    if (code.label() != null) {
      a.put("label", code.label());
    }
    actions.add(a);
  }

  @Override
  public Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now) {
    return tx.redeemEnrollmentCode(codeHash, now);
  }

  @Override
  public void insertDevice(DeviceRow d) {
    tx.insertDevice(d);
    ObjectNode a = obj(DeviceRow.API_CLIENT.equals(d.kind()) ? "apiClient.issued" : "device.enrolled")
        .put("deviceId", d.deviceId().toString()).put("name", d.name());
    if (d.userId() != null) {
      a.put("userId", d.userId());
    }
    if (d.publicKey() != null) {
      a.put("publicKey", d.publicKey());
    }
    actions.add(a);
  }

  @Override
  public void renewToken(UUID deviceId, String tokenHash, Instant expiresAt) {
    tx.renewToken(deviceId, tokenHash, expiresAt);
    actions.add(obj("device.tokenRenewed").put("deviceId", deviceId.toString()).put("expiresAt", AuditChain.micros(expiresAt)));
  }

  @Override
  public boolean revokeDevice(UUID deviceId, Instant at) {
    boolean ok = tx.revokeDevice(deviceId, at);
    if (ok) {
      revoked.add(deviceId);
    }
    if (ok) {
      actions.add(obj("device.revoked").put("deviceId", deviceId.toString()));
    }
    return ok;
  }

  @Override
  public void putUser(UserRow u) {
    tx.putUser(u);
    ObjectNode a = obj("user.put").put("userId", u.userId());
    u.roles().forEach(a.putArray("roles")::add);
    ArrayNode units = a.putArray("orgUnits");
    u.orgUnits().forEach(units::add);
    actions.add(a);
  }

  @Override
  public void putOrgUnit(OrgUnitRow u) {
    tx.putOrgUnit(u);
    ObjectNode a = obj("orgUnit.put").put("orgUnitId", u.orgUnitId()).put("name", u.name());
    u.parent().ifPresent(p -> a.put("parent", p));
    actions.add(a);
  }

  // ---------------------------------------------------------------- scope keys

  @Override
  public Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys) {
    Map<RecordKey, StoredRecord> found = tx.findRecords(keys);
    known.putAll(found);
    asked.addAll(keys);
    return found;
  }

  @Override
  public void putRecords(Collection<StoredRecord> records) {
    CollectionCatalog cat = catalog.orElseThrow(() -> new IllegalStateException("this store was opened without collections"));
    List<RecordKey> unknown = new ArrayList<>();
    for (StoredRecord r : records) {
      if (!cleared && !known.containsKey(r.key()) && !asked.contains(r.key())) {
        unknown.add(r.key());
      }
    }
    if (!unknown.isEmpty()) {
      known.putAll(tx.findRecords(unknown));
      asked.addAll(unknown);
    }
    List<StoredRecord> out = new ArrayList<>(records.size());
    List<ScopeMove> moves = new ArrayList<>();
    for (StoredRecord r : records) {
      StoredRecord old = known.get(r.key());
      Optional<CollectionSchema> schema = cat.find(r.collection());
      String key;
      if (schema.isEmpty()) {
        key = null;
      } else if (r.deleted() && (old != null || r.scopeKey() != null)) {
        // A tombstone stays in the unit the record had, so those who saw the record learn of the delete.
        key = old != null ? old.scopeKey() : r.scopeKey();
      } else {
        key = schema.get().scopeKey(r.data());
      }
      StoredRecord row = r.withScopeKey(key);
      touched.add(new org.civicsync.server.store.CommitNotice.Touch(row.collection(), Optional.ofNullable(key)));
      if (old != null && old.scopeKey() != null && !Objects.equals(old.scopeKey(), key)) {
        moves.add(new ScopeMove(row.seq(), row.collection(), row.recordId(), old.scopeKey()));
        touched.add(new org.civicsync.server.store.CommitNotice.Touch(row.collection(), Optional.of(old.scopeKey())));
      }
      out.add(row);
      known.put(row.key(), row);
    }
    tx.putRecords(out);
    if (!moves.isEmpty()) {
      tx.recordMoves(moves);
    }
  }

  @Override
  public void clearRecords() {
    tx.clearRecords();
    known.clear();
    asked.clear();
    cleared = true;
  }

  @Override
  public void recordMoves(List<ScopeMove> moves) {
    tx.recordMoves(moves);
  }

  // ---------------------------------------------------------------- plain delegation

  @Override
  public long head() {
    return tx.head();
  }

  @Override
  public Map<UUID, LoggedMutation> findLogged(Collection<UUID> mutationIds) {
    return tx.findLogged(mutationIds);
  }

  @Override
  public Optional<RecordState> findVersion(RecordKey key, long version) {
    return tx.findVersion(key, version);
  }

  @Override
  public List<StoredRecord> findByFields(String collection, Map<String, String> equals, int limit) {
    return tx.findByFields(collection, equals, limit);
  }

  @Override
  public List<Optional<StoredRecord>> firstByFields(String collection, List<Map<String, String>> lookups) {
    return tx.firstByFields(collection, lookups);
  }

  @Override
  public Optional<InboxItem> findInboxItem(UUID id) {
    return tx.findInboxItem(id);
  }

  @Override
  public Map<UUID, MutationResult> latestOutcomes(Collection<UUID> mutationIds) {
    return tx.latestOutcomes(mutationIds);
  }

  @Override
  public void forEachLogged(Consumer<LoggedMutation> consumer) {
    tx.forEachLogged(consumer);
  }

  @Override
  public Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims) {
    return tx.claimHolders(claims);
  }

  @Override
  public void putClaims(Map<RecordKey, List<Claim>> claims) {
    tx.putClaims(claims);
  }

  @Override
  public void advanceHead(long newHead) {
    tx.advanceHead(newHead);
    advancedTo = newHead;
  }

  @Override
  public DeviceQueue deviceQueue(UUID deviceId) {
    return tx.deviceQueue(deviceId);
  }

  @Override
  public void setDeviceProgress(UUID deviceId, long deviceSeq) {
    tx.setDeviceProgress(deviceId, deviceSeq);
  }

  @Override
  public Map<UUID, HeldMutation> findHeld(Collection<UUID> mutationIds) {
    return tx.findHeld(mutationIds);
  }

  @Override
  public void hold(List<HeldMutation> held) {
    tx.hold(held);
  }

  @Override
  public void release(Collection<UUID> mutationIds) {
    tx.release(mutationIds);
  }

  @Override
  public void markPushed(UUID deviceId, Instant at) {
    tx.markPushed(deviceId, at);
  }

  @Override
  public AuditHead auditHead() {
    return tx.auditHead();
  }

  @Override
  public void appendAudit(AuditEntry entry) {
    throw new UnsupportedOperationException("audit entries are sealed by the audited store itself");
  }
}
