package org.civicsync.server.push;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.time.Clock;
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

  public PushService(ServerStore store, CollectionCatalog catalog, Clock clock) {
    this.store = store;
    this.catalog = catalog;
    this.clock = clock;
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
            Outcome outcome = MutationRules.decide(catalog, m, current, now);
            seq++;
            if (outcome.next().isPresent()) {
              StoredRecord row = StoredRecord.of(key, outcome.next().get(), seq);
              records.put(key, row);
              changed.put(key, row);
            }
            LoggedMutation entry = new LoggedMutation(seq, m, digests.get(i), device.deviceId(), outcome.result(), now);
            log.add(entry);
            seen.put(m.mutationId(), entry);
            out.add(outcome.result());
          }
          tx.appendLog(log);
          tx.putRecords(changed.values());
          tx.advanceHead(seq);
          tx.markPushed(device.deviceId(), now);
          return out;
        });
    return new PushResponse(results, now);
  }
}
