package org.civicsync.server.rules;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.core.rules.RecordRuleSpec;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.WriteTx;

/**
 * The claims of one push: what is committed, corrected by what earlier mutations of the same push
 * changed, so the second of two bookings of one slot in a single push is refused as surely as one
 * in a later push.
 */
public final class ClaimLedger {
  private final WriteTx tx;
  private final Map<Claim, Set<UUID>> committed = new HashMap<>();
  private final Map<RecordKey, List<Claim>> changed = new LinkedHashMap<>();
  // The records of this push holding each claim now: holders() must not walk every changed
  // record for every claim (a push of 500 bookings made that 125,000 steps).
  private final Map<Claim, Set<RecordKey>> takers = new HashMap<>();
  private final Map<String, Integer> limits = new HashMap<>();

  public ClaimLedger(WriteTx tx) {
    this.tx = tx;
  }

  /** The claims a record in this state holds under its collection's rules. */
  public static List<Claim> claimsOf(CollectionSchema schema, RecordState state) {
    List<Claim> out = new ArrayList<>();
    if (state.deleted()) {
      return out;
    }
    for (RecordRuleSpec r : schema.rules()) {
      r.claimOf(state.data()).ifPresent(out::add);
    }
    return out;
  }

  /**
   * The first rule the change breaks: a claim the record does not hold yet whose holders have
   * reached the rule's limit.
   */
  public Optional<ErrorDetail> breach(CollectionSchema schema, RecordKey key, Optional<RecordState> before, RecordState after) {
    for (RecordRuleSpec r : schema.rules()) {
      Optional<Claim> wanted = r.claimOf(after.data());
      if (wanted.isEmpty() || wanted.equals(before.filter(b -> !b.deleted()).flatMap(b -> r.claimOf(b.data())))) {
        continue;
      }
      Set<UUID> holders = holders(wanted.get());
      holders.remove(key.recordId());
      int limit = limitOf(r, after);
      if (holders.size() >= limit) {
        return Optional.of(ErrorDetail.of(r.code(), r.breachMessage(after.data(), limit), "/data/" + r.fields().get(0)));
      }
    }
    return Optional.empty();
  }

  /**
   * The rule's limit for this record: read from the table the rule names (e.g. a clinic's slot
   * capacity) when it has one and the record is there, else the rule's own limit. Lookups are
   * cached for the push ({@link #prefetch} reads those it foresees in one go), and read inside its
   * transaction.
   */
  private int limitOf(RecordRuleSpec r, RecordState after) {
    if (r.limitFrom().isEmpty()) {
      return r.limit();
    }
    RecordRuleSpec.LimitFrom from = r.limitFrom().get();
    Optional<Map<String, String>> lookup = from.lookup(after.data());
    if (lookup.isEmpty()) {
      return r.limit();
    }
    return limits.computeIfAbsent(limitKey(from, lookup.get()),
        k -> limitIn(r, tx.findByFields(from.collection(), lookup.get(), 1).stream().findFirst()));
  }

  private static String limitKey(RecordRuleSpec.LimitFrom from, Map<String, String> lookup) {
    return from.collection() + "\n" + lookup;
  }

  /** The limit a rule takes from the record its lookup found, or its own. */
  private static int limitIn(RecordRuleSpec r, Optional<org.civicsync.server.store.StoredRecord> row) {
    return row.map(x -> x.data().get(r.limitFrom().get().field()))
        .filter(v -> v != null && v.canConvertToInt() && v.asInt() >= 0 && v.isIntegralNumber())
        .map(com.fasterxml.jackson.databind.JsonNode::asInt)
        .orElse(r.limit());
  }

  /** A claim a change is expected to take, by its rule, with the record's expected state after it. */
  public record Expected(RecordRuleSpec rule, Claim claim, com.fasterxml.jackson.databind.node.ObjectNode after) {}

  /**
   * Reads ahead what checking these expected claims will need: their committed holders, and the
   * limits their rules read from other records, each kind in one round trip (a push of a thousand
   * bookings checks its slots and its clinics' capacities in two). What a merge makes differently
   * is read when it is needed.
   */
  public void prefetch(java.util.Collection<Expected> expected) {
    List<Claim> missing = expected.stream().map(Expected::claim).filter(c -> !committed.containsKey(c)).distinct().toList();
    if (!missing.isEmpty()) {
      committed.putAll(tx.claimHolders(missing));
    }
    // Per collection of limits, the distinct lookups not read yet (by their cache key), in order.
    Map<String, Map<String, Lookup>> byCollection = new LinkedHashMap<>();
    for (Expected e : expected) {
      e.rule().limitFrom().ifPresent(from -> from.lookup(e.after()).ifPresent(fields -> {
        String key = limitKey(from, fields);
        if (!limits.containsKey(key)) {
          byCollection.computeIfAbsent(from.collection(), c -> new LinkedHashMap<>()).putIfAbsent(key, new Lookup(e.rule(), fields));
        }
      }));
    }
    byCollection.forEach((collection, wanted) -> {
      List<String> keys = new ArrayList<>(wanted.keySet());
      List<Lookup> lookups = new ArrayList<>(wanted.values());
      List<Optional<org.civicsync.server.store.StoredRecord>> found = tx.firstByFields(collection, lookups.stream().map(Lookup::fields).toList());
      for (int i = 0; i < keys.size(); i++) {
        limits.put(keys.get(i), limitIn(lookups.get(i).rule(), found.get(i)));
      }
    });
  }

  private record Lookup(RecordRuleSpec rule, Map<String, String> fields) {}

  /** Records that the record now holds these claims. */
  public void hold(RecordKey key, List<Claim> claims) {
    List<Claim> before = changed.put(key, List.copyOf(claims));
    if (before != null) {
      for (Claim c : before) {
        Set<RecordKey> s = takers.get(c);
        if (s != null) {
          s.remove(key);
        }
      }
    }
    for (Claim c : claims) {
      takers.computeIfAbsent(c, x -> new HashSet<>()).add(key);
    }
  }

  /** The claims of every record this push changed, to write with the records. */
  public Map<RecordKey, List<Claim>> changes() {
    return changed;
  }

  /** The records holding {@code claim} now: committed holders as this push left them, and this push's takers. */
  private Set<UUID> holders(Claim claim) {
    if (!committed.containsKey(claim)) {
      // Not foreseen by the prefetch (a merge produced other values): one more lookup.
      committed.putAll(tx.claimHolders(List.of(claim)));
    }
    // Rules belong to one collection ("<collection>/<rule>"): a record elsewhere with the same id
    // is not a holder.
    String collection = claim.rule().substring(0, Math.max(0, claim.rule().indexOf('/')));
    Set<UUID> out = new HashSet<>();
    for (UUID id : committed.get(claim)) {
      // A committed holder this push changed holds the claim only if its new state does.
      List<Claim> now = changed.get(new RecordKey(collection, id));
      if (now == null || now.contains(claim)) {
        out.add(id);
      }
    }
    for (RecordKey k : takers.getOrDefault(claim, Set.of())) {
      if (k.collection().equals(collection)) {
        out.add(k.recordId());
      }
    }
    return out;
  }
}
