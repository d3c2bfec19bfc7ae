package org.civicsync.server.push;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.Schemas;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;
import org.civicsync.core.records.Outcome;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.validation.SchemaChecker;
import org.civicsync.core.validation.Violation;
import org.civicsync.server.ApiException;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.rules.Claim;
import org.civicsync.core.rules.RecordRuleSpec;
import org.civicsync.server.rules.ClaimLedger;
import org.civicsync.server.rules.RecordRule;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.WriteTx;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;

/**
 * Ingests pushes. A push is checked whole against the contract first (a malformed push changes
 * nothing); then its mutations are decided in order inside one write transaction of the caller's
 * tenant, so a push of any size costs a handful of statements and either all its outcomes are
 * durable or none is.
 */
public final class PushService {
  private static final SchemaChecker PUSH_SCHEMA = SchemaChecker.contract(Schemas.PUSH_REQUEST);

  private final org.civicsync.server.audit.AuditedStore store;
  private final CollectionCatalog catalog;
  private final java.util.concurrent.ConcurrentHashMap<String, Optional<org.civicsync.core.signing.Ed25519.PublicKey>> keys =
      new java.util.concurrent.ConcurrentHashMap<>();
  private final Clock clock;
  private final Duration maxClockSkew;
  private final List<RecordRule> javaRules;
  private final Duration holdWindow;

  /** Default for how long a held mutation waits for its gap to fill before it is forced through. */
  public static final Duration DEFAULT_HOLD_WINDOW = Duration.ofDays(5);

  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this(store, catalog, clock, MutationRules.DEFAULT_MAX_CLOCK_SKEW, List.of(), DEFAULT_HOLD_WINDOW);
  }

  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock, Duration maxClockSkew, List<RecordRule> javaRules) {
    this(store, catalog, clock, maxClockSkew, javaRules, DEFAULT_HOLD_WINDOW);
  }

  /**
   * @param maxClockSkew how far a mutation's clock may run ahead of the server's
   * @param javaRules the deployment's rules written in Java, run after the declarative ones
   * @param holdWindow how long a mutation held behind a gap waits before it is forced through
   */
  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock, Duration maxClockSkew, List<RecordRule> javaRules,
      Duration holdWindow) {
    this.store = org.civicsync.server.audit.AuditedStore.wrap(store, catalog, clock);
    this.catalog = catalog;
    this.clock = clock;
    this.maxClockSkew = maxClockSkew;
    this.javaRules = List.copyOf(javaRules);
    this.holdWindow = holdWindow;
  }

  /**
   * Parses and checks a push body already read as a JSON tree.
   *
   * @throws ApiException {@code TOO_MANY_MUTATIONS} or {@code INVALID_REQUEST}
   */
  public static PushRequest parse(JsonNode body) {
    JsonNode mutations = body.path("mutations");
    if (mutations.isArray() && mutations.size() > PushRequest.MAX_MUTATIONS) {
      throw new ApiException(ErrorCode.TOO_MANY_MUTATIONS,
          "a push carries at most " + PushRequest.MAX_MUTATIONS + " mutations, this one " + mutations.size(), "/mutations");
    }
    Optional<Violation> v = PUSH_SCHEMA.firstViolation(body);
    if (v.isPresent()) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, v.get().message(), v.get().pointer());
    }
    try {
      return Json.mapper().treeToValue(body, PushRequest.class);
    } catch (JsonProcessingException e) {
      // The schema admits only what the records can hold; reaching here is a contract bug.
      throw new ApiException(ErrorCode.INVALID_REQUEST, e.getOriginalMessage());
    }
  }

  /**
   * Decides and commits every mutation of the push; one result per mutation, in request order.
   * Signatures are checked first, before the tenant lock is taken: a mutation whose signature does
   * not verify with the device's key is answered {@code BAD_SIGNATURE} and recorded nowhere (it
   * occupies no mutationId and no deviceSeq). The others are processed in deviceSeq order, merged
   * with those the device has held; one arriving after a gap is held until the gap fills.
   */
  public PushResponse push(Caller.Device device, PushRequest request) {
    List<Mutation> mutations = request.mutations();
    MutationResult[] results = new MutationResult[mutations.size()];
    String[] digestOf = new String[mutations.size()];
    boolean[] good = verifySignatures(device, mutations, digestOf);
    List<Mutation> accepted = new ArrayList<>(mutations.size());
    List<Integer> positions = new ArrayList<>(mutations.size());
    for (int i = 0; i < mutations.size(); i++) {
      Mutation m = mutations.get(i);
      if (good[i]) {
        accepted.add(m);
        positions.add(i);
      } else {
        results[i] = MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(ErrorCode.BAD_SIGNATURE,
            "the signature does not verify with this device's key over this tenant, device and content", "/mutations/" + i + "/signature"));
      }
    }
    Instant now = clock.instant();
    if (!accepted.isEmpty()) {
      // Hashed with the signature check, before the tenant lock is taken, to keep the lock short.
      List<String> digests = new ArrayList<>(accepted.size());
      for (int p : positions) {
        digests.add(digestOf[p]);
      }
      List<MutationResult> decided = store.transact(device.tenantId(), device.actor(), tx -> {
        Batch batch = new Batch(tx, device.tenantId(), device.deviceId(), device.row().name(), now, false, device.access());
        List<MutationResult> out = batch.run(accepted, digests);
        tx.markPushed(device.deviceId(), now);
        return out;
      });
      for (int k = 0; k < positions.size(); k++) {
        results[positions.get(k)] = decided.get(k);
      }
    }
    return new PushResponse(List.of(results), now);
  }

  private final SignatureCheck signatures = new SignatureCheck();

  /**
   * Which mutations carry a valid signature of this device, and each one's content digest into
   * {@code digests}: both come from the mutation's one canonical form (the signature signs it, the
   * digest hashes it), computed once. Large pushes are checked on every core.
   */
  private boolean[] verifySignatures(Caller.Device device, List<Mutation> mutations, String[] digests) {
    Optional<org.civicsync.core.signing.Ed25519.PublicKey> key = device.row().publicKey() == null ? Optional.empty()
        : keys.computeIfAbsent(device.row().publicKey(), org.civicsync.core.signing.Ed25519::publicKey);
    boolean parallel = mutations.size() >= 64;
    byte[][] canonical = new byte[mutations.size()][];
    java.util.stream.IntStream range = java.util.stream.IntStream.range(0, mutations.size());
    (parallel ? range.parallel() : range).forEach(i -> {
      canonical[i] = org.civicsync.core.canonical.Jcs.canonicalBytes(org.civicsync.core.signing.Envelopes.unsigned(mutations.get(i)));
      digests[i] = Digests.sha256Hex(canonical[i]);
    });
    return key.isEmpty() ? new boolean[mutations.size()]
        : signatures.verifyAll(mutations, canonical, device.tenantId(), device.deviceId(), key.get(), parallel);
  }

  /**
   * Applies a device's held mutations whose hold window has ended, skipping the gap before them
   * (each skip opens a {@code forced} inbox item), and any that follow in order. For a periodic
   * sweeper: a device that never pushes again still gets its held changes applied.
   *
   * @return how many held mutations were processed
   */
  public int releaseExpired(DeviceKey device, org.civicsync.server.tenancy.Access access) {
    Instant now = clock.instant();
    return store.transact(device.tenantId(), org.civicsync.server.audit.Actors.system(),
        tx -> new Batch(tx, device.tenantId(), device.deviceId(), null, now, false, access).releaseOnly());
  }

  /**
   * One write of an online system (the records API), through the same rules, policies, event log
   * and change feed as a push, but never merged: a base other than the current version is refused
   * (412 with the current record), and the per-device order does not apply (an online system has
   * no offline queue). A rejection is answered at once, so it opens no inbox item.
   *
   * @param digest the write's content digest (stable across retries of one Idempotency-Key)
   * @throws ApiException {@code VERSION_MISMATCH} (412), {@code RECORD_NOT_FOUND} (404),
   *     {@code IDEMPOTENCY_KEY_REUSED} (422)
   */
  public MutationResult writeOnline(Caller.Device writer, Mutation m, String digest) {
    Instant now = clock.instant();
    return store.transact(writer.tenantId(), writer.actor(),
        tx -> new Batch(tx, writer.tenantId(), writer.deviceId(), writer.row().name(), now, true, writer.access()).online(m, digest));
  }

  /** The state of one push (or one release) inside its write transaction. */
  private final class Batch {
    private final WriteTx tx;
    private final String tenantId;
    private final UUID deviceId;
    private final String deviceName;
    private final Instant now;
    private final Map<UUID, LoggedMutation> seen = new HashMap<>();
    private final Map<UUID, MutationResult> later = new HashMap<>();
    private final Map<RecordKey, StoredRecord> records = new HashMap<>();
    private final Map<RecordKey, StoredRecord> changed = new LinkedHashMap<>();
    // States produced earlier in this push, by record and version: a later stale change of the
    // same push may need one as its base before any of it is written.
    private final Map<RecordKey, Map<Long, RecordState>> produced = new HashMap<>();
    private final List<LoggedMutation> log = new ArrayList<>();
    private final List<InboxItem> inbox = new ArrayList<>();
    private final List<OutcomeRow> outcomes = new ArrayList<>();
    private final ClaimLedger claims;
    private final boolean online;
    private final org.civicsync.server.tenancy.Access access;
    private long seq;

    Batch(WriteTx tx, String tenantId, UUID deviceId, String deviceName, Instant now, boolean online,
        org.civicsync.server.tenancy.Access access) {
      this.online = online;
      this.access = access;
      this.tx = tx;
      this.tenantId = tenantId;
      this.deviceId = deviceId;
      this.deviceName = deviceName;
      this.now = now;
      this.claims = new ClaimLedger(tx);
      this.seq = tx.head();
    }

    /** A mutation waiting its turn: from this push (index into the request) or held earlier. */
    private record Pending(Mutation m, String digest, int index, HeldMutation held) {}

    List<MutationResult> run(List<Mutation> mutations, List<String> digests) {
      Set<UUID> ids = new LinkedHashSet<>();
      mutations.forEach(m -> ids.add(m.mutationId()));
      seen.putAll(tx.findLogged(ids));
      // A parked or rejected mutation may have been resolved since: its replay answers with the
      // final outcome. Only those are looked up, so a plain push pays nothing for this.
      List<UUID> resolvable = seen.values().stream()
          .filter(e -> e.result().status() == MutationStatus.CONFLICT || e.result().status() == MutationStatus.REJECTED)
          .map(e -> e.mutation().mutationId()).toList();
      if (!resolvable.isEmpty()) {
        later.putAll(tx.latestOutcomes(resolvable));
      }
      Map<UUID, HeldMutation> heldElsewhere = ids.size() > seen.size() ? tx.findHeld(ids) : Map.of();
      DeviceQueue queue = tx.deviceQueue(deviceId);
      MutationResult[] out = new MutationResult[mutations.size()];
      Map<UUID, Integer> firstIndex = new HashMap<>();
      Map<UUID, Pending> waiting = new HashMap<>();
      for (HeldMutation h : queue.held()) {
        waiting.put(h.mutation().mutationId(), new Pending(h.mutation(), h.contentHash(), -1, h));
      }
      List<Integer> duplicates = new ArrayList<>();
      for (int i = 0; i < mutations.size(); i++) {
        Mutation m = mutations.get(i);
        LoggedMutation prior = seen.get(m.mutationId());
        if (prior != null) {
          out[i] = prior.contentHash().equals(digests.get(i))
              ? later.getOrDefault(m.mutationId(), prior.result()).asReplay()
              : reused(m);
          continue;
        }
        HeldMutation held = heldElsewhere.get(m.mutationId());
        if (held != null && !held.deviceId().equals(deviceId)) {
          // Held for the device that first sent it; it applies in that device's order.
          out[i] = held.contentHash().equals(digests.get(i))
              ? MutationResult.held(m.mutationId(), m.recordId(), held.deviceSeq()).asReplay() : reused(m);
          continue;
        }
        if (held != null || firstIndex.containsKey(m.mutationId())) {
          Pending p = waiting.get(m.mutationId());
          if (!p.digest().equals(digests.get(i))) {
            out[i] = reused(m);
          } else if (p.index() < 0) {
            // A held mutation sent again: it takes its turn as the held copy and answers here.
            waiting.put(m.mutationId(), new Pending(p.m(), p.digest(), i, p.held()));
            firstIndex.put(m.mutationId(), i);
          } else {
            duplicates.add(i); // answered with its first copy's result below
          }
          continue;
        }
        firstIndex.put(m.mutationId(), i);
        waiting.put(m.mutationId(), new Pending(m, digests.get(i), i, null));
      }
      Set<RecordKey> keys = new LinkedHashSet<>();
      waiting.values().forEach(p -> keys.add(new RecordKey(p.m().collection(), p.m().recordId())));
      records.putAll(tx.findRecords(keys));
      claims.prefetch(expectedClaims(waiting.values().stream().map(Pending::m).toList(), records));
      walk(queue.progress(), waiting.values(), out);
      for (int i : duplicates) {
        MutationResult first = out[firstIndex.getOrDefault(mutations.get(i).mutationId(), i)];
        out[i] = first == null ? null : first.asReplay();
      }
      for (int i = 0; i < out.length; i++) {
        if (out[i] == null) {
          throw new IllegalStateException("no result for mutation " + i);
        }
      }
      flush();
      return List.of(out);
    }

    MutationResult online(Mutation m, String digest) {
      seen.putAll(tx.findLogged(List.of(m.mutationId())));
      LoggedMutation prior = seen.get(m.mutationId());
      if (prior != null) {
        if (!prior.contentHash().equals(digest)) {
          throw new ApiException(ErrorCode.IDEMPOTENCY_KEY_REUSED, "this Idempotency-Key was used for another write",
              "Idempotency-Key");
        }
        return prior.result().asReplay();
      }
      RecordKey key = new RecordKey(m.collection(), m.recordId());
      records.putAll(tx.findRecords(List.of(key)));
      StoredRecord cur = records.get(key);
      if (m.op() == org.civicsync.contracts.MutationOp.CREATE) {
        if (cur != null) {
          throw new ApiException(ErrorCode.VERSION_MISMATCH, "the record exists (version " + cur.version() + ")", "If-None-Match",
              412, MutationRules.serverRecord(m, cur.state()));
        }
      } else {
        if (cur == null || cur.deleted()) {
          throw new ApiException(ErrorCode.RECORD_NOT_FOUND, "no record " + m.recordId() + " in " + m.collection(), null, 404,
              cur == null ? null : MutationRules.serverRecord(m, cur.state()));
        }
        if (cur.version() != m.baseVersion()) {
          throw new ApiException(ErrorCode.VERSION_MISMATCH, "If-Match names version " + m.baseVersion()
              + " but the record is at version " + cur.version(), "If-Match", 412, MutationRules.serverRecord(m, cur.state()));
        }
      }
      claims.prefetch(expectedClaims(List.of(m), records));
      MutationResult r = decide(m, digest, deviceId);
      flush();
      return r;
    }

    int releaseOnly() {
      DeviceQueue queue = tx.deviceQueue(deviceId);
      List<Pending> waiting = queue.held().stream().map(h -> new Pending(h.mutation(), h.contentHash(), -1, h)).toList();
      Set<RecordKey> keys = new LinkedHashSet<>();
      waiting.forEach(p -> keys.add(new RecordKey(p.m().collection(), p.m().recordId())));
      records.putAll(tx.findRecords(keys));
      int before = log.size();
      walk(queue.progress(), waiting, new MutationResult[0]);
      flush();
      return log.size() - before;
    }

    /**
     * Processes pending mutations in deviceSeq order while there is no gap; at a gap, a held
     * mutation whose window has ended is forced through (the gap is skipped and flagged);
     * otherwise everything after the gap stays (or becomes) held.
     */
    private void walk(long progressAtStart, java.util.Collection<Pending> pending, MutationResult[] out) {
      List<Pending> order = new ArrayList<>(pending);
      order.sort(java.util.Comparator.comparingLong((Pending p) -> p.m().deviceSeq()).thenComparingInt(Pending::index));
      long progress = progressAtStart;
      Instant cutoff = now.minus(holdWindow);
      List<HeldMutation> toHold = new ArrayList<>();
      List<UUID> released = new ArrayList<>();
      boolean blocked = false;
      for (Pending p : order) {
        long s = p.m().deviceSeq();
        if (blocked || s > progress + 1) {
          boolean expired = p.held() != null && p.held().receivedAt().isBefore(cutoff);
          if (blocked || !expired) {
            // The gap stands: this one, and every one after it, waits.
            blocked = true;
            if (p.held() == null) {
              toHold.add(new HeldMutation(deviceId, p.m(), p.digest(), now));
            }
            if (p.index() >= 0) {
              out[p.index()] = p.held() == null
                  ? MutationResult.held(p.m().mutationId(), p.m().recordId(), progress + 1)
                  : MutationResult.held(p.m().mutationId(), p.m().recordId(), progress + 1).asReplay();
            }
            continue;
          }
          inbox.add(forcedItem(p.m(), progress + 1, p.held()));
        }
        MutationResult r = decide(p.m(), p.digest(), p.held() != null ? p.held().deviceId() : deviceId);
        if (p.held() != null) {
          released.add(p.m().mutationId());
          seq++;
          outcomes.add(new OutcomeRow(seq, p.held().deviceId(), r, now));
        }
        if (p.index() >= 0) {
          out[p.index()] = p.held() != null ? r.asReplay() : r;
        }
        progress = Math.max(progress, s);
      }
      if (!toHold.isEmpty()) {
        tx.hold(toHold);
      }
      if (!released.isEmpty()) {
        tx.release(released);
      }
      if (progress != progressAtStart) {
        tx.setDeviceProgress(deviceId, progress);
      }
    }

    /** Decides one mutation against the records as this batch has left them, and logs it. */
    private MutationResult decide(Mutation m, String digest, UUID sender) {
      RecordKey key = new RecordKey(m.collection(), m.recordId());
      Optional<RecordState> current = Optional.ofNullable(records.get(key)).map(StoredRecord::state);
      MutationRules.Context ctx = new MutationRules.Context(catalog, now, maxClockSkew, version -> {
        RecordState here = produced.getOrDefault(key, Map.of()).get(version);
        return here != null ? Optional.of(here) : tx.findVersion(key, version);
      });
      StoredRecord currentRow = records.get(key);
      Optional<ErrorDetail> denied = authorize(m, currentRow);
      Outcome outcome = denied.isPresent()
          ? Outcome.of(MutationResult.rejected(m.mutationId(), m.recordId(), denied.get()))
          : scoped(m, checkRules(tenantId, claims, key, m, current, MutationRules.decide(ctx, m, current)));
      seq++;
      RecordState after = outcome.next().orElse(null);
      if (after != null) {
        StoredRecord row = StoredRecord.of(key, after, seq);
        records.put(key, row);
        changed.put(key, row);
        produced.computeIfAbsent(key, k -> new HashMap<>()).put(after.version(), after);
        claims.hold(key, ClaimLedger.claimsOf(catalog.find(m.collection()).orElseThrow(), after));
      }
      outcome.parked().ifPresent(p -> inbox.add(conflictItem(m, sender, deviceName, p, outcome.result(), now)));
      if (outcome.result().status() == MutationStatus.REJECTED && !online
          && !ErrorCode.CLOCK_SKEW.name().equals(outcome.result().error().code())) {
        // A clock-skew rejection is the device's to fix by sending the change again, not a person's.
        inbox.add(rejectedItem(m, sender, deviceName, current, outcome.result(), now));
      }
      LoggedMutation entry = new LoggedMutation(seq, m, digest, sender, outcome.result(), now, after);
      log.add(entry);
      seen.put(m.mutationId(), entry);
      return outcome.result();
    }

    /** The role and scope checks that come before anything else is decided about a mutation. */
    private Optional<ErrorDetail> authorize(Mutation m, StoredRecord current) {
      Optional<CollectionSchema> schema = catalog.find(m.collection());
      if (schema.isEmpty()) {
        return Optional.empty(); // UNKNOWN_COLLECTION comes from the rules
      }
      org.civicsync.core.access.Action action = switch (m.op()) {
        case CREATE -> org.civicsync.core.access.Action.CREATE;
        case UPDATE -> org.civicsync.core.access.Action.UPDATE;
        case DELETE -> org.civicsync.core.access.Action.DELETE;
      };
      if (!access.may(schema.get(), action)) {
        return Optional.of(ErrorDetail.of(ErrorCode.FORBIDDEN, "your roles (" + String.join(", ", new java.util.TreeSet<>(access.roles()))
            + ") may not " + action.wire() + " records of " + m.collection()));
      }
      if (current != null && schema.get().scopeField().isPresent()) {
        String key = current.deleted() ? current.scopeKey() : schema.get().scopeKey(current.data());
        if (!access.scope().covers(key)) {
          return Optional.of(outOfScope(schema.get()));
        }
      }
      return Optional.empty();
    }

    /** A change may not leave a record outside the writer's org units either. */
    private Outcome scoped(Mutation m, Outcome outcome) {
      Optional<CollectionSchema> schema = catalog.find(m.collection());
      if (schema.isEmpty() || schema.get().scopeField().isEmpty() || outcome.next().isEmpty() || outcome.next().get().deleted()) {
        return outcome;
      }
      if (access.scope().covers(schema.get().scopeKey(outcome.next().get().data()))) {
        return outcome;
      }
      return Outcome.of(MutationResult.rejected(m.mutationId(), m.recordId(), outOfScope(schema.get())));
    }

    private ErrorDetail outOfScope(CollectionSchema schema) {
      return ErrorDetail.of(ErrorCode.OUT_OF_SCOPE, "the record's " + schema.scopeField().orElseThrow()
          + " is not one of your org units (or below one)", "/data/" + schema.scopeField().orElseThrow());
    }

    private InboxItem forcedItem(Mutation m, long missing, HeldMutation held) {
      ObjectNode detail = Json.mapper().createObjectNode();
      detail.set("client", Json.mapper().valueToTree(m));
      detail.put("missingFrom", missing);
      detail.put("missingTo", m.deviceSeq() - 1);
      detail.put("heldSince", held.receivedAt().toString());
      if (deviceName != null) {
        detail.put("deviceName", deviceName);
      }
      UUID id = UUID.nameUUIDFromBytes(("civicsync-forced\n" + m.mutationId()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
      return InboxItem.open(id, "forced", m.collection(), m.recordId(), m.mutationId(), held.deviceId(), detail, now);
    }

    private void flush() {
      if (!log.isEmpty()) {
        tx.appendLog(log);
      }
      if (!changed.isEmpty()) {
        tx.putRecords(changed.values());
      }
      if (!claims.changes().isEmpty()) {
        tx.putClaims(claims.changes());
      }
      if (!inbox.isEmpty()) {
        tx.openInboxItems(inbox);
      }
      if (!outcomes.isEmpty()) {
        tx.appendOutcomes(outcomes);
      }
      tx.advanceHead(seq);
    }

    private MutationResult reused(Mutation m) {
      return MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(ErrorCode.MUTATION_ID_REUSED,
          "mutationId " + m.mutationId() + " was already used for a mutation with other content", "/mutationId"));
    }
  }

  /**
   * The claims the push's creates and updates would take if applied as sent: what the rule checks
   * will almost always ask about.
   */
  private List<ClaimLedger.Expected> expectedClaims(List<Mutation> mutations, Map<RecordKey, StoredRecord> records) {
    List<ClaimLedger.Expected> out = new ArrayList<>();
    for (Mutation m : mutations) {
      Optional<CollectionSchema> schema = catalog.find(m.collection());
      if (schema.isEmpty() || schema.get().rules().isEmpty() || m.data() == null) {
        continue;
      }
      StoredRecord cur = records.get(new RecordKey(m.collection(), m.recordId()));
      ObjectNode data = m.op() == org.civicsync.contracts.MutationOp.CREATE || cur == null || cur.deleted()
          ? MutationRules.withDefaults(schema.get(), m.data())
          : MutationRules.patched(cur.data(), m.data());
      for (RecordRuleSpec r : schema.get().rules()) {
        Optional<Claim> held = cur == null || cur.deleted() ? Optional.empty() : r.claimOf(cur.data());
        // A claim the record already holds needs no check: only new claims are counted.
        r.claimOf(data).filter(c -> !held.equals(Optional.of(c))).ifPresent(c -> out.add(new ClaimLedger.Expected(r, c, data)));
      }
    }
    return out;
  }

  /**
   * Server-authoritative rules on a change that would leave a live record: the collection's
   * declarative rules first, then the deployment's Java rules. A breach turns the outcome into a
   * rejection that changes nothing.
   */
  private Outcome checkRules(String tenantId, ClaimLedger claims, RecordKey key, Mutation m, Optional<RecordState> current,
      Outcome outcome) {
    if (outcome.next().isEmpty() || outcome.next().get().deleted()) {
      return outcome;
    }
    RecordState after = outcome.next().get();
    Optional<ErrorDetail> breach = claims.breach(catalog.find(m.collection()).orElseThrow(), key, current, after);
    if (breach.isEmpty()) {
      for (RecordRule r : javaRules) {
        Optional<String> refusal = r.check(new RecordRule.Input(tenantId, m, current, after));
        if (refusal.isPresent()) {
          breach = Optional.of(ErrorDetail.of(ErrorCode.RULE_VIOLATION, refusal.get()));
          break;
        }
      }
    }
    return breach.map(e -> Outcome.of(MutationResult.rejected(m.mutationId(), m.recordId(), e))).orElse(outcome);
  }

  private static InboxItem conflictItem(Mutation m, UUID deviceId, String deviceName, Outcome.Parked p, MutationResult result,
      Instant now) {
    ObjectNode detail = Json.mapper().createObjectNode();
    if (p.base() != null) {
      detail.set("base", Json.mapper().valueToTree(MutationRules.serverRecord(m, p.base())));
    }
    detail.set("server", Json.mapper().valueToTree(MutationRules.serverRecord(m, p.server())));
    detail.set("client", Json.mapper().valueToTree(m));
    detail.set("conflictFields", Json.mapper().valueToTree(p.conflictFields()));
    if (deviceName != null) {
      detail.put("deviceName", deviceName);
    }
    return InboxItem.open(result.conflictId(), "conflict", m.collection(), m.recordId(), m.mutationId(),
        deviceId, detail, now);
  }

  /** A rejection, for a supervisor to see (and, where a person can fix it, resolve). */
  private static InboxItem rejectedItem(Mutation m, UUID deviceId, String deviceName, Optional<RecordState> current,
      MutationResult result, Instant now) {
    ObjectNode detail = Json.mapper().createObjectNode();
    current.ifPresent(c -> detail.set("server", Json.mapper().valueToTree(MutationRules.serverRecord(m, c))));
    detail.set("client", Json.mapper().valueToTree(m));
    detail.set("error", Json.mapper().valueToTree(result.error()));
    if (deviceName != null) {
      detail.put("deviceName", deviceName);
    }
    UUID id = UUID.nameUUIDFromBytes(("civicsync-rejected\n" + m.mutationId()).getBytes(java.nio.charset.StandardCharsets.UTF_8));
    return InboxItem.open(id, "rejected", m.collection(), m.recordId(), m.mutationId(), deviceId, detail, now);
  }
}
