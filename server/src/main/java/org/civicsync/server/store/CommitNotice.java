package org.civicsync.server.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.LinkedHashSet;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.civicsync.core.json.Json;

/**
 * What one committed write transaction changed, as far as a device's live stream cares: the
 * tenant's new head, the records' collections and scope keys, and the devices that got an
 * outcome. A store delivers it to {@link ServerStore#onCommit} subscribers after the commit, on
 * every server instance that shares the database.
 *
 * @param touched collection and scope key of every record written, including the key a record
 *     moved away from; empty when {@code everything}
 * @param outcomesFor devices that got an outcome (a later result of a held or parked mutation)
 * @param revoked devices revoked by the transaction: their open streams end
 * @param everything the notice does not say what changed (it would not fit, or notices were lost
 *     while a listener reconnected): every subscriber of the tenant should pull
 * @param committedAt when the transaction committed, by the clock of the instance that committed
 *     it: stores stamp it ({@link #committedNow}) as they commit, so a stream can say how old the
 *     change it announces is (and the benchmark can time notices from the commit)
 */
public record CommitNotice(String tenantId, long head, Set<Touch> touched, Set<UUID> outcomesFor, Set<UUID> revoked, boolean everything,
    Instant committedAt) {
  /** Past this many bytes of JSON a notice says {@code everything} (PostgreSQL's NOTIFY takes 8000). */
  public static final int MAX_ENCODED = 7000;

  public CommitNotice {
    touched = Set.copyOf(touched);
    outcomesFor = Set.copyOf(outcomesFor);
    revoked = Set.copyOf(revoked);
    java.util.Objects.requireNonNull(committedAt, "committedAt");
  }

  /** A notice made now, inside its transaction; the store stamps the commit's time on it. */
  public CommitNotice(String tenantId, long head, Set<Touch> touched, Set<UUID> outcomesFor, Set<UUID> revoked, boolean everything) {
    this(tenantId, head, touched, outcomesFor, revoked, everything, Instant.now());
  }

  /** This notice with the time it is now as its commit time: for a store to call as it commits. */
  public CommitNotice committedNow() {
    return new CommitNotice(tenantId, head, touched, outcomesFor, revoked, everything, Instant.now());
  }

  /** A record of {@code collection}; {@code scopeKey} empty for a collection without a scope field. */
  public record Touch(String collection, Optional<String> scopeKey) {}

  /** A notice that tells every subscriber of the tenant to pull. */
  public static CommitNotice everything(String tenantId, long head) {
    return new CommitNotice(tenantId, head, Set.of(), Set.of(), Set.of(), true);
  }

  /** Compact JSON, at most {@link #MAX_ENCODED} bytes (a notice too large becomes {@code everything}). */
  public String encode() {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("t", tenantId).put("h", head).put("at", micros(committedAt));
    if (everything) {
      return encodeEverything();
    }
    ArrayNode c = o.putArray("c");
    for (Touch t : touched) {
      ArrayNode pair = c.addArray().add(t.collection());
      t.scopeKey().ifPresent(pair::add);
    }
    ArrayNode d = o.putArray("d");
    outcomesFor.forEach(id -> d.add(id.toString()));
    if (!revoked.isEmpty()) {
      ArrayNode r = o.putArray("r");
      revoked.forEach(id -> r.add(id.toString()));
    }
    String s = o.toString();
    // Too large: say "everything", but never drop a revocation (a few ids always fit).
    return s.getBytes(java.nio.charset.StandardCharsets.UTF_8).length <= MAX_ENCODED ? s
        : new CommitNotice(tenantId, head, Set.of(), Set.of(), revoked, true, committedAt).encodeEverything();
  }

  private String encodeEverything() {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("t", tenantId).put("h", head).put("at", micros(committedAt)).put("all", true);
    if (!revoked.isEmpty()) {
      ArrayNode r = o.putArray("r");
      revoked.forEach(id -> r.add(id.toString()));
    }
    return o.toString();
  }

  private static long micros(Instant t) {
    return java.time.temporal.ChronoUnit.MICROS.between(Instant.EPOCH, t);
  }

  /** The notice {@link #encode} wrote. */
  public static CommitNotice decode(String text) {
    try {
      JsonNode o = Json.mapper().readTree(text);
      String tenant = o.get("t").asText();
      long head = o.get("h").asLong();
      // Notices from an instance older than the commit time carry none: the time they arrive stands in.
      Instant at = o.has("at") ? Instant.EPOCH.plus(o.get("at").asLong(), java.time.temporal.ChronoUnit.MICROS) : Instant.now();
      Set<UUID> revoked = new LinkedHashSet<>();
      o.path("r").forEach(r -> revoked.add(UUID.fromString(r.asText())));
      if (o.path("all").asBoolean(false)) {
        return new CommitNotice(tenant, head, Set.of(), Set.of(), revoked, true, at);
      }
      Set<Touch> touched = new LinkedHashSet<>();
      for (JsonNode pair : o.path("c")) {
        touched.add(new Touch(pair.get(0).asText(), pair.size() > 1 ? Optional.of(pair.get(1).asText()) : Optional.empty()));
      }
      Set<UUID> devices = new LinkedHashSet<>();
      o.path("d").forEach(d -> devices.add(UUID.fromString(d.asText())));
      return new CommitNotice(tenant, head, touched, devices, revoked, false, at);
    } catch (java.io.IOException | RuntimeException e) {
      throw new IllegalArgumentException("not a commit notice: " + text, e);
    }
  }
}
