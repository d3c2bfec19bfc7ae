package org.civicsync.server.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
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
 */
public record CommitNotice(String tenantId, long head, Set<Touch> touched, Set<UUID> outcomesFor, Set<UUID> revoked, boolean everything) {
  /** Past this many bytes of JSON a notice says {@code everything} (PostgreSQL's NOTIFY takes 8000). */
  public static final int MAX_ENCODED = 7000;

  public CommitNotice {
    touched = Set.copyOf(touched);
    outcomesFor = Set.copyOf(outcomesFor);
    revoked = Set.copyOf(revoked);
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
    o.put("t", tenantId).put("h", head);
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
        : new CommitNotice(tenantId, head, Set.of(), Set.of(), revoked, true).encodeEverything();
  }

  private String encodeEverything() {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("t", tenantId).put("h", head).put("all", true);
    if (!revoked.isEmpty()) {
      ArrayNode r = o.putArray("r");
      revoked.forEach(id -> r.add(id.toString()));
    }
    return o.toString();
  }

  /** The notice {@link #encode} wrote. */
  public static CommitNotice decode(String text) {
    try {
      JsonNode o = Json.mapper().readTree(text);
      String tenant = o.get("t").asText();
      long head = o.get("h").asLong();
      Set<UUID> revoked = new LinkedHashSet<>();
      o.path("r").forEach(r -> revoked.add(UUID.fromString(r.asText())));
      if (o.path("all").asBoolean(false)) {
        return new CommitNotice(tenant, head, Set.of(), Set.of(), revoked, true);
      }
      Set<Touch> touched = new LinkedHashSet<>();
      for (JsonNode pair : o.path("c")) {
        touched.add(new Touch(pair.get(0).asText(), pair.size() > 1 ? Optional.of(pair.get(1).asText()) : Optional.empty()));
      }
      Set<UUID> devices = new LinkedHashSet<>();
      o.path("d").forEach(d -> devices.add(UUID.fromString(d.asText())));
      return new CommitNotice(tenant, head, touched, devices, revoked, false);
    } catch (java.io.IOException | RuntimeException e) {
      throw new IllegalArgumentException("not a commit notice: " + text, e);
    }
  }
}
