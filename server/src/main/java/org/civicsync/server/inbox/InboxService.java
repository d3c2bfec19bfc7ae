package org.civicsync.server.inbox;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.InboxItemView;
import org.civicsync.contracts.InboxResponse;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.ResolveRequest;
import org.civicsync.contracts.ResolveResponse;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.validation.Violation;
import org.civicsync.server.ApiException;
import org.civicsync.server.rules.ClaimLedger;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;

/**
 * Lists and resolves inbox items. A resolution is one write transaction of the tenant: the record
 * change it implies (a new version, through the same schema and rules as a push, logged like a
 * push), the item marked resolved with who, how and why, and an outcome for the device whose change
 * was parked or rejected. Resolving again with the same {@code Idempotency-Key} answers the same.
 */
public final class InboxService {
  /** Largest page of inbox items. */
  public static final int MAX_LIMIT = 1000;

  private final org.civicsync.server.audit.AuditedStore store;
  private final CollectionCatalog catalog;
  private final Clock clock;
  private final List<org.civicsync.server.rules.RecordRule> javaRules;

  public InboxService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this(store, catalog, clock, List.of());
  }

  /** @param javaRules the deployment's rules in Java: a resolution must satisfy them like a push */
  public InboxService(ServerStore store, CollectionCatalog catalog, Clock clock, List<org.civicsync.server.rules.RecordRule> javaRules) {
    this.store = org.civicsync.server.audit.AuditedStore.wrap(store, catalog, clock);
    this.catalog = catalog;
    this.clock = clock;
    this.javaRules = List.copyOf(javaRules);
  }

  /** Items of the caller's tenant, newest first. */
  public InboxResponse list(Caller.Device caller, Optional<String> status, Optional<String> kind, Optional<String> collection,
      Optional<String> limit) {
    status.filter(s -> !s.equals("open") && !s.equals("resolved")).ifPresent(s -> {
      throw new ApiException(ErrorCode.INVALID_REQUEST, "status must be open or resolved", "status");
    });
    kind.filter(k -> !List.of("conflict", "rejected", "forced").contains(k)).ifPresent(k -> {
      throw new ApiException(ErrorCode.INVALID_REQUEST, "kind must be conflict, rejected or forced", "kind");
    });
    collection.filter(c -> !c.isEmpty() && !catalog.contains(c)).ifPresent(c -> {
      throw new ApiException(ErrorCode.INVALID_REQUEST, "unknown collection '" + c + "'", "collection");
    });
    int n = 100;
    limit = limit.filter(l -> !l.isEmpty());
    if (limit.isPresent()) {
      if (!limit.get().matches("[0-9]{1,4}") || Integer.parseInt(limit.get()) < 1 || Integer.parseInt(limit.get()) > MAX_LIMIT) {
        throw new ApiException(ErrorCode.LIMIT_OUT_OF_RANGE, "limit must be an integer from 1 to " + MAX_LIMIT, "limit");
      }
      n = Integer.parseInt(limit.get());
    }
    if (catalog.definitions().stream().noneMatch(d -> caller.access().may(catalog.find(d.name()).orElseThrow(),
        org.civicsync.core.access.Action.RESOLVE))) {
      throw new ApiException(ErrorCode.FORBIDDEN, "your roles may not resolve inbox items of any collection");
    }
    // Items the caller may not see are filtered out after reading, so read more than asked for
    // when the caller is limited; a page may still hold fewer than `limit` visible items.
    boolean limited = !caller.access().scope().isUnrestricted();
    int fetch = limited ? n * 4 : n;
    return new InboxResponse(store.inbox(caller.tenantId(), status.filter(v -> !v.isEmpty()), kind.filter(v -> !v.isEmpty()),
        collection.filter(v -> !v.isEmpty()), fetch).stream().filter(i -> visible(caller, i, Optional.empty())).limit(n)
        .map(InboxService::view).toList());
  }

  /**
   * Whether the caller may see and resolve the item: its roles grant {@code resolve} on the
   * collection and the record (as stored, or as the device sent it) is in the caller's org units.
   */
  private boolean visible(Caller.Device caller, InboxItem item, Optional<StoredRecord> current) {
    Optional<CollectionSchema> schema = catalog.find(item.collection());
    if (schema.isEmpty()) {
      return caller.access().hasRole(org.civicsync.core.access.Role.ADMIN) || caller.access().hasRole(org.civicsync.core.access.Role.SUPERVISOR);
    }
    if (!caller.access().may(schema.get(), org.civicsync.core.access.Action.RESOLVE)) {
      return false;
    }
    if (schema.get().scopeField().isEmpty() || caller.access().scope().isUnrestricted()) {
      return true;
    }
    Optional<StoredRecord> rec = current.isPresent() ? current
        : store.findRecord(caller.tenantId(), new RecordKey(item.collection(), item.recordId()));
    if (rec.isPresent()) {
      StoredRecord r = rec.get();
      return caller.access().scope().covers(r.deleted() ? r.scopeKey() : schema.get().scopeKey(r.data()));
    }
    com.fasterxml.jackson.databind.JsonNode data = item.detail().path("client").path("data");
    return data.isObject() && caller.access().scope().covers(schema.get().scopeKey((ObjectNode) data));
  }

  /**
   * Resolves an item.
   *
   * @throws ApiException {@code INBOX_ITEM_NOT_FOUND}, {@code INBOX_ITEM_RESOLVED},
   *     {@code RESOLUTION_REJECTED}
   */
  public ResolveResponse resolve(Caller.Device caller, UUID id, ResolveRequest request, Optional<String> idempotencyKey) {
    Instant now = clock.instant();
    String requestDigest = Digests.of(Json.mapper().valueToTree(request));
    return store.transact(caller.tenantId(), caller.actor(), tx -> {
      InboxItem item = tx.findInboxItem(id)
          .orElseThrow(() -> new ApiException(ErrorCode.INBOX_ITEM_NOT_FOUND, "no inbox item " + id, "id"));
      if (!visible(caller, item, Optional.empty())) {
        // Items outside the caller's roles or org units do not exist for it.
        throw new ApiException(ErrorCode.INBOX_ITEM_NOT_FOUND, "no inbox item " + id, "id");
      }
      if (item.status().equals("resolved")) {
        String key = item.resolution().path("idempotencyKey").asText(null);
        if (idempotencyKey.isPresent() && idempotencyKey.get().equals(key)) {
          if (!requestDigest.equals(item.resolution().path("requestDigest").asText(requestDigest))) {
            throw new ApiException(ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key resolved the item with another request; the first resolution stands", "Idempotency-Key");
          }
          // The same request again: the first answer.
          return Json.mapper().convertValue(item.resolution().get("response"), ResolveResponse.class);
        }
        throw new ApiException(ErrorCode.INBOX_ITEM_RESOLVED, "inbox item " + id + " was resolved at " + item.resolvedAt()
            + " (" + item.resolution().path("resolution").asText() + ")", "id");
      }
      Optional<CollectionSchema> known = catalog.find(item.collection());
      if (known.isEmpty() && !request.resolution().equals("keepServer")) {
        throw rejected("collection " + item.collection() + " is not defined; only keepServer (dismiss) is possible", "/resolution");
      }
      RecordKey key = new RecordKey(item.collection(), item.recordId());
      Optional<StoredRecord> current = Optional.ofNullable(tx.findRecords(List.of(key)).get(key));
      Mutation client = Json.mapper().convertValue(item.detail().get("client"), Mutation.class);
      Optional<ObjectNode> data = known.isEmpty() ? Optional.empty() : target(known.get(), request, current, client, item);
      long seq = tx.head();
      Optional<ServerRecord> record = current.map(c -> MutationRules.serverRecord(client, c.state()));
      if (data.isPresent()) {
        CollectionSchema schema = known.get();
        ObjectNode next = keepFieldKinds(schema, current, data.get());
        if (schema.scopeField().isPresent() && !caller.access().scope().covers(schema.scopeKey(next))) {
          throw rejected("OUT_OF_SCOPE: the resolved record's " + schema.scopeField().get() + " is not one of your org units",
              "/data/" + schema.scopeField().get());
        }
        Optional<Violation> v = schema.check(next);
        if (v.isPresent()) {
          throw rejected("VALIDATION_FAILED: " + v.get().message(), "/data" + v.get().pointer());
        }
        long version = current.map(StoredRecord::version).orElse(0L) + 1;
        String hlc = new Hlc(now.toEpochMilli(), 0, "server").toString();
        Map<String, String> clocks = new java.util.HashMap<>(current.map(StoredRecord::fieldHlc).orElse(Map.of()));
        next.fieldNames().forEachRemaining(f -> clocks.put(f, hlc));
        RecordState after = new RecordState(version, false, next, now, clocks);
        ClaimLedger claims = new ClaimLedger(tx);
        Optional<ErrorDetail> breach = claims.breach(schema, key, current.map(StoredRecord::state), after);
        if (breach.isPresent()) {
          throw rejected(breach.get().code() + ": " + breach.get().message(), breach.get().field());
        }
        for (org.civicsync.server.rules.RecordRule r : javaRules) {
          Optional<String> refusal = r.check(new org.civicsync.server.rules.RecordRule.Input(caller.tenantId(), client,
              current.map(StoredRecord::state), after));
          if (refusal.isPresent()) {
            throw rejected("RULE_VIOLATION: " + refusal.get(), null);
          }
        }
        claims.hold(key, ClaimLedger.claimsOf(schema, after));
        Mutation change = new Mutation(resolutionMutationId(id), 0, item.collection(), item.recordId(),
            current.isPresent() ? MutationOp.UPDATE : MutationOp.CREATE,
            current.map(StoredRecord::version).orElse(0L), next, hlc, now.toString());
        seq++;
        MutationResult applied = MutationResult.merged(change.mutationId(), MutationRules.serverRecord(change, after), List.of(),
            request.resolution());
        // Who (the device), how and why go into the event log with the change itself.
        ObjectNode note = Json.mapper().createObjectNode().put("inboxItem", id.toString()).put("resolution", request.resolution());
        if (request.comment() != null) {
          note.put("comment", request.comment());
        }
        tx.appendLog(List.of(new LoggedMutation(seq, change, Digests.mutation(change), caller.deviceId(), applied, now, after, note)));
        tx.putRecords(List.of(StoredRecord.of(key, after, seq)));
        tx.putClaims(claims.changes());
        record = Optional.of(MutationRules.serverRecord(change, after));
      }
      ObjectNode resolution = Json.mapper().createObjectNode();
      resolution.put("resolution", request.resolution());
      if (request.comment() != null) {
        resolution.put("comment", request.comment());
      }
      resolution.put("resolvedBy", caller.deviceId().toString());
      if (!caller.access().userId().isEmpty()) {
        resolution.put("resolvedByUser", caller.access().userId());
      }
      resolution.put("requestDigest", requestDigest);
      resolution.put("resolvedAt", now.toString());
      record.filter(r -> data.isPresent()).ifPresent(r -> resolution.put("version", r.version()));
      idempotencyKey.ifPresent(k -> resolution.put("idempotencyKey", k));
      boolean acknowledged = item.kind().equals("forced") && data.isEmpty();
      if (item.mutationId() != null && item.deviceId() != null && !acknowledged) {
        // The device that made the parked or rejected change learns how it ended.
        List<String> dropped = new ArrayList<>();
        if (!request.resolution().equals("takeClient") && client.data() != null) {
          client.data().fieldNames().forEachRemaining(dropped::add);
        }
        MutationResult finalResult = record.isPresent()
            ? MutationResult.merged(item.mutationId(), record.get(), dropped, request.resolution())
            : MutationResult.dismissed(item.mutationId(), item.recordId(),
                Json.mapper().convertValue(item.detail().path("error"), org.civicsync.contracts.ErrorDetail.class), request.resolution());
        seq++;
        tx.appendOutcomes(List.of(new OutcomeRow(seq, item.deviceId(), finalResult, now)));
      }
      tx.advanceHead(seq);
      InboxItemView resolved = view(new InboxItem(item.id(), item.kind(), "resolved", item.collection(), item.recordId(),
          item.mutationId(), item.deviceId(), item.detail(), item.createdAt(), now, resolution));
      ResolveResponse response = new ResolveResponse(resolved, record.orElse(null));
      ObjectNode stored = resolution.deepCopy();
      stored.set("response", Json.mapper().valueToTree(response));
      tx.resolveInboxItem(id, stored, now);
      return response;
    });
  }

  /** The record's data after the resolution, or empty when it writes nothing (keep a tombstone). */
  private static Optional<ObjectNode> target(CollectionSchema schema, ResolveRequest request, Optional<StoredRecord> current,
      Mutation client, InboxItem item) {
    boolean live = current.isPresent() && !current.get().deleted();
    switch (request.resolution()) {
      case "keepServer":
        if (item.kind().equals("forced")) {
          return Optional.empty(); // the forced change was applied; keeping it is an acknowledgement
        }
        // A new version with the server's data: every device pulls the record again and settles.
        return live ? Optional.of(current.get().data().deepCopy()) : Optional.empty();
      case "takeClient":
        if (client.op() == MutationOp.DELETE) {
          throw rejected("taking a parked delete is not supported; delete the record with a new change", null);
        }
        if (live) {
          return Optional.of(MutationRules.patched(current.get().data(), client.data()));
        }
        return Optional.of(MutationRules.withDefaults(schema, client.data()));
      case "edit":
        return Optional.of(request.data().deepCopy());
      default:
        throw new ApiException(ErrorCode.INVALID_REQUEST, "unknown resolution " + request.resolution(), "/resolution");
    }
  }

  /**
   * A person's resolution still keeps the field kinds' invariants: an append-only array keeps
   * every item it had, and a monotonic field may only move along its transitions.
   */
  private static ObjectNode keepFieldKinds(CollectionSchema schema, Optional<StoredRecord> current, ObjectNode next) {
    if (current.isEmpty() || current.get().deleted()) {
      return next;
    }
    ObjectNode cur = current.get().data();
    ObjectNode out = next.deepCopy();
    schema.policy().fields().forEach((f, rule) -> {
      if (rule instanceof org.civicsync.core.conflicts.FieldRule.AppendOnly && cur.has(f)) {
        com.fasterxml.jackson.databind.node.ArrayNode given = out.has(f) && out.get(f).isArray()
            ? (com.fasterxml.jackson.databind.node.ArrayNode) out.get(f) : Json.mapper().createArrayNode();
        // Items the person's data left out go back first, in the order the record had them.
        com.fasterxml.jackson.databind.node.ArrayNode merged = Json.mapper().createArrayNode();
        for (com.fasterxml.jackson.databind.JsonNode item : cur.get(f)) {
          boolean present = false;
          for (com.fasterxml.jackson.databind.JsonNode x : given) {
            present |= org.civicsync.core.conflicts.Settle.same(x, item);
          }
          if (!present) {
            merged.add(item);
          }
        }
        merged.addAll(given);
        out.set(f, merged);
      }
      if (rule instanceof org.civicsync.core.conflicts.FieldRule.Monotonic m && cur.hasNonNull(f)
          && (!out.hasNonNull(f) || !m.allows(cur.get(f).asText(), out.get(f).asText()))) {
        throw rejected("INVALID_TRANSITION: " + f + " may not move from " + cur.get(f) + " to "
            + (out.has(f) ? out.get(f) : "(nothing)"), "/data/" + f);
      }
    });
    return out;
  }

  /** The id under which a resolution's record change is logged: one per item. */
  public static UUID resolutionMutationId(UUID itemId) {
    return UUID.nameUUIDFromBytes(("civicsync-resolution\n" + itemId).getBytes(StandardCharsets.UTF_8));
  }

  private static ApiException rejected(String message, String field) {
    return new ApiException(ErrorCode.RESOLUTION_REJECTED, message + " (the inbox item stays open)", field);
  }

  private static InboxItemView view(InboxItem i) {
    ObjectNode resolution = i.resolution() == null ? null : i.resolution().deepCopy();
    if (resolution != null) {
      resolution.remove("response");
      resolution.remove("idempotencyKey");
      resolution.remove("requestDigest");
    }
    return new InboxItemView(i.id(), i.kind(), i.status(), i.collection(), i.recordId(), i.mutationId(), i.deviceId(),
        i.createdAt(), i.detail(), resolution);
  }
}
