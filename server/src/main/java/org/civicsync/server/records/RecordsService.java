package org.civicsync.server.records;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.RecordsPage;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;
import org.civicsync.server.ApiException;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;

/** Reads and writes of the records API. */
public final class RecordsService {
  /** Largest page of a listing. */
  public static final int MAX_LIMIT = 1000;

  private final ServerStore store;
  private final CollectionCatalog catalog;
  private final PushService push;
  private final Clock clock;

  public RecordsService(ServerStore store, CollectionCatalog catalog, PushService push, Clock clock) {
    this.store = store;
    this.catalog = catalog;
    this.push = push;
    this.clock = clock;
  }

  /** How a write names its precondition. */
  public enum Write { PATCH, PUT, DELETE }

  /**
   * A live record.
   *
   * @throws ApiException {@code UNKNOWN_COLLECTION} (404), {@code RECORD_NOT_FOUND} (404)
   */
  public ServerRecord get(Caller.ApiClient client, String collection, UUID recordId) {
    known(collection);
    StoredRecord r = store.findRecord(client.tenantId(), new RecordKey(collection, recordId))
        .filter(x -> !x.deleted())
        .orElseThrow(() -> new ApiException(ErrorCode.RECORD_NOT_FOUND, "no record " + recordId + " in " + collection, null, 404, null));
    return new ServerRecord(collection, recordId, r.version(), false, r.data(), r.updatedAt());
  }

  /**
   * Live records whose top-level fields equal the given values, ordered by id.
   *
   * @throws ApiException {@code UNKNOWN_COLLECTION} (404), {@code LIMIT_OUT_OF_RANGE},
   *     {@code INVALID_REQUEST}
   */
  public RecordsPage list(Caller.ApiClient client, String collection, Map<String, String> equals, Optional<String> after,
      Optional<String> limit) {
    known(collection);
    int n = 100;
    if (limit.isPresent() && !limit.get().isEmpty()) {
      if (!limit.get().matches("[0-9]{1,4}") || Integer.parseInt(limit.get()) < 1 || Integer.parseInt(limit.get()) > MAX_LIMIT) {
        throw new ApiException(ErrorCode.LIMIT_OUT_OF_RANGE, "limit must be an integer from 1 to " + MAX_LIMIT, "limit");
      }
      n = Integer.parseInt(limit.get());
    }
    Optional<UUID> from = after.filter(a -> !a.isEmpty()).map(a -> {
      try {
        return UUID.fromString(a);
      } catch (IllegalArgumentException e) {
        throw new ApiException(ErrorCode.INVALID_REQUEST, "after must be a record id", "after");
      }
    });
    JsonFields.check(catalog.find(collection).orElseThrow().definition().schema(), equals.keySet());
    List<StoredRecord> rows = store.listRecords(client.tenantId(), collection, equals, from, n + 1);
    boolean more = rows.size() > n;
    List<StoredRecord> page = more ? rows.subList(0, n) : rows;
    return new RecordsPage(page.stream().map(r -> new ServerRecord(collection, r.recordId(), r.version(), false, r.data(), r.updatedAt()))
        .toList(), more ? page.get(page.size() - 1).recordId() : null);
  }

  // Time-ordered, as devices mint theirs: the event log's index on mutation ids grows at its end.
  private static final java.security.SecureRandom ID_BITS = new java.security.SecureRandom();

  /**
   * A write: PATCH (fields replace, null removes), PUT (the whole data; with {@code If-None-Match:
   * *} a create), DELETE.
   *
   * @param ifMatch the version the write is based on (required but for a create)
   * @return the record after the write (a tombstone for a delete) and whether it was created
   */
  public Written write(Caller.ApiClient client, String collection, UUID recordId, Write kind, Optional<Long> ifMatch,
      boolean ifNoneMatchAny, Optional<ObjectNode> body, Optional<String> idempotencyKey) {
    known(collection);
    boolean create = kind == Write.PUT && ifNoneMatchAny;
    if (!create && ifMatch.isEmpty()) {
      throw new ApiException(ErrorCode.PRECONDITION_REQUIRED,
          "send If-Match with the version the write is based on (its ETag), or If-None-Match: * to create", "If-Match");
    }
    MutationOp op = create ? MutationOp.CREATE : kind == Write.DELETE ? MutationOp.DELETE : MutationOp.UPDATE;
    long base = create ? 0 : ifMatch.get();
    // The idempotency digest covers what the caller sent (method, precondition, body), not what the
    // server derives from the record, so a retry with the same key and body is recognised even
    // after the first attempt changed the record.
    ObjectNode intent = Json.mapper().createObjectNode().put("collection", collection).put("recordId", recordId.toString())
        .put("method", kind.name()).put("create", create).put("baseVersion", base);
    body.ifPresent(b -> intent.set("body", b));
    String digest = Digests.of(intent);
    ObjectNode data = body.orElse(null);
    if (kind == Write.PUT && !create) {
      // Replace: every field the current record has and the new data lacks is removed. The
      // If-Match check inside the write makes sure this is the data that version had.
      data = data.deepCopy();
      StoredRecord cur = store.findRecord(client.tenantId(), new RecordKey(collection, recordId)).orElse(null);
      if (cur != null && !cur.deleted() && cur.version() == ifMatch.get()) {
        for (Iterator<String> it = cur.data().fieldNames(); it.hasNext(); ) {
          String f = it.next();
          if (!data.has(f)) {
            data.putNull(f);
          }
        }
      }
    }
    UUID mutationId = idempotencyKey
        .map(k -> UUID.nameUUIDFromBytes(("civicsync-api\n" + client.clientId() + "\n" + k).getBytes(StandardCharsets.UTF_8)))
        .orElseGet(() -> org.civicsync.core.ids.Uuid7.next(clock.millis(), ID_BITS));
    Instant now = clock.instant();
    Mutation m = new Mutation(mutationId, 1, collection, recordId, op, base, data,
        new Hlc(now.toEpochMilli(), 0, "api-" + client.clientId()).toString(), now.toString());
    MutationResult r = push.writeOnline(client.asWriter(), m, digest);
    if (r.status() == MutationStatus.REJECTED) {
      ErrorCode code = ErrorCode.valueOf(r.error().code());
      throw new ApiException(code, r.error().message(), r.error().field(), code == ErrorCode.RECORD_NOT_FOUND ? 404 : 422,
          r.serverRecord());
    }
    ServerRecord record = r.record() != null ? r.record()
        : store.findRecord(client.tenantId(), new RecordKey(collection, recordId))
            .map(x -> MutationRules.serverRecord(m, x.state())).orElseThrow();
    return new Written(record, create);
  }

  /** A write's answer. */
  public record Written(ServerRecord record, boolean created) {}

  private void known(String collection) {
    if (!catalog.contains(collection)) {
      throw new ApiException(ErrorCode.UNKNOWN_COLLECTION, "no collection '" + collection + "'", "collection", 404, null);
    }
  }

  /** Field filters must name fields the collection declares. */
  static final class JsonFields {
    private JsonFields() {}

    static void check(ObjectNode schema, java.util.Set<String> fields) {
      if (!schema.path("properties").isObject()) {
        return;
      }
      for (String f : fields) {
        if (!schema.get("properties").has(f)) {
          throw new ApiException(ErrorCode.INVALID_REQUEST, "the collection has no field '" + f + "' to filter by", f);
        }
      }
    }
  }
}
