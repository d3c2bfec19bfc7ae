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
import org.civicsync.server.store.InboxItem;
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

  private final ServerStore store;
  private final CollectionCatalog catalog;
  private final Clock clock;
  private final Duration maxClockSkew;
  private final List<RecordRule> javaRules;

  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this(store, catalog, clock, MutationRules.DEFAULT_MAX_CLOCK_SKEW, List.of());
  }

  /**
   * @param maxClockSkew how far a mutation's clock may run ahead of the server's
   * @param javaRules the deployment's rules written in Java, run after the declarative ones
   */
  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock, Duration maxClockSkew, List<RecordRule> javaRules) {
    this.store = store;
    this.catalog = catalog;
    this.clock = clock;
    this.maxClockSkew = maxClockSkew;
    this.javaRules = List.copyOf(javaRules);
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

  /** Decides and commits every mutation of the push; one result per mutation, in order. */
  public PushResponse push(Caller.Device device, PushRequest request) {
    List<Mutation> mutations = request.mutations();
    List<String> digests = new ArrayList<>(mutations.size());
    Set<UUID> ids = new LinkedHashSet<>();
    Set<RecordKey> keys = new LinkedHashSet<>();
    for (Mutation m : mutations) {
      // Hashing and schema work happen before the tenant lock is taken, to keep it short.
      digests.add(Digests.mutation(m));
      ids.add(m.mutationId());
      keys.add(new RecordKey(m.collection(), m.recordId()));
    }
    Instant now = clock.instant();
    List<MutationResult> results =
        store.write(device.tenantId(), tx -> {
          Map<UUID, LoggedMutation> seen = new HashMap<>(tx.findLogged(ids));
          Map<RecordKey, StoredRecord> records = new HashMap<>(tx.findRecords(keys));
          Map<RecordKey, StoredRecord> changed = new LinkedHashMap<>();
          List<LoggedMutation> log = new ArrayList<>();
          List<MutationResult> out = new ArrayList<>(mutations.size());
          long seq = tx.head();
          // States produced earlier in this push, by record and version: a later stale change of
          // the same push may need one as its base before any of it is written.
          Map<RecordKey, Map<Long, RecordState>> produced = new HashMap<>();
          List<InboxItem> inbox = new ArrayList<>();
          ClaimLedger claims = new ClaimLedger(tx);
          claims.prefetch(expectedClaims(mutations, records));
          for (int i = 0; i < mutations.size(); i++) {
            Mutation m = mutations.get(i);
            LoggedMutation prior = seen.get(m.mutationId());
            if (prior != null) {
              out.add(prior.contentHash().equals(digests.get(i))
                  ? prior.result().asReplay()
                  : MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(ErrorCode.MUTATION_ID_REUSED,
                      "mutationId " + m.mutationId() + " was already used for a mutation with other content", "/mutationId")));
              continue;
            }
            RecordKey key = new RecordKey(m.collection(), m.recordId());
            Optional<RecordState> current = Optional.ofNullable(records.get(key)).map(StoredRecord::state);
            MutationRules.Context ctx = new MutationRules.Context(catalog, now, maxClockSkew, version -> {
              RecordState here = produced.getOrDefault(key, Map.of()).get(version);
              return here != null ? Optional.of(here) : tx.findVersion(key, version);
            });
            Outcome outcome = checkRules(device.tenantId(), claims, key, m, current, MutationRules.decide(ctx, m, current));
            seq++;
            RecordState after = outcome.next().orElse(null);
            if (after != null) {
              StoredRecord row = StoredRecord.of(key, after, seq);
              records.put(key, row);
              changed.put(key, row);
              produced.computeIfAbsent(key, k -> new HashMap<>()).put(after.version(), after);
              claims.hold(key, ClaimLedger.claimsOf(catalog.find(m.collection()).orElseThrow(), after));
            }
            outcome.parked().ifPresent(p -> inbox.add(conflictItem(m, device, p, outcome.result(), now)));
            LoggedMutation entry = new LoggedMutation(seq, m, digests.get(i), device.deviceId(), outcome.result(), now, after);
            log.add(entry);
            seen.put(m.mutationId(), entry);
            out.add(outcome.result());
          }
          tx.appendLog(log);
          tx.putRecords(changed.values());
          if (!claims.changes().isEmpty()) {
            tx.putClaims(claims.changes());
          }
          if (!inbox.isEmpty()) {
            tx.openInboxItems(inbox);
          }
          tx.advanceHead(seq);
          tx.markPushed(device.deviceId(), now);
          return out;
        });
    return new PushResponse(results, now);
  }

  /**
   * The claims the push's creates and updates would take if applied as sent: what the rule checks
   * will almost always ask about.
   */
  private List<Claim> expectedClaims(List<Mutation> mutations, Map<RecordKey, StoredRecord> records) {
    List<Claim> out = new ArrayList<>();
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
        r.claimOf(data).filter(c -> !held.equals(Optional.of(c))).ifPresent(out::add);
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

  private static InboxItem conflictItem(Mutation m, Caller.Device device, Outcome.Parked p, MutationResult result, Instant now) {
    ObjectNode detail = Json.mapper().createObjectNode();
    if (p.base() != null) {
      detail.set("base", Json.mapper().valueToTree(MutationRules.serverRecord(m, p.base())));
    }
    detail.set("server", Json.mapper().valueToTree(MutationRules.serverRecord(m, p.server())));
    detail.set("client", Json.mapper().valueToTree(m));
    detail.set("conflictFields", Json.mapper().valueToTree(p.conflictFields()));
    detail.put("deviceName", device.row().name());
    return new InboxItem(result.conflictId(), "conflict", "open", m.collection(), m.recordId(), m.mutationId(),
        device.deviceId(), detail, now);
  }
}
