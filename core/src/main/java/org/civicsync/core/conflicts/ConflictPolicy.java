package org.civicsync.core.conflicts;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/**
 * A collection's conflict policy, read from the {@code policy} member of its definition (schema
 * {@code conflict-policy.schema.json}).
 *
 * @param defaultPolicy for every field without a rule of its own
 * @param deleteWins whether a delete stands against a concurrent update ({@code deleteWins}) or the
 *     update resurrects the record ({@code updateWins})
 */
public record ConflictPolicy(PolicyName defaultPolicy, boolean deleteWins, Map<String, FieldRule> fields) {
  /** Merge every field three-way; deletes win. */
  public static final ConflictPolicy DEFAULT = new ConflictPolicy(PolicyName.MERGE, true, Map.of());

  public ConflictPolicy {
    fields = Map.copyOf(fields);
  }

  /** The rule for a field: its own, or the default policy. */
  public FieldRule rule(String field) {
    FieldRule r = fields.get(field);
    return r != null ? r : new FieldRule.ByPolicy(defaultPolicy);
  }

  /**
   * Reads a policy already checked against {@code conflict-policy.schema.json}; absent means
   * {@link #DEFAULT}.
   */
  public static ConflictPolicy parse(JsonNode policy) {
    if (policy == null || policy.isMissingNode() || policy.isNull()) {
      return DEFAULT;
    }
    PolicyName def = policy.has("default") ? PolicyName.fromWire(policy.get("default").asText()) : PolicyName.MERGE;
    boolean deleteWins = !"updateWins".equals(policy.path("deleteVsUpdate").asText("deleteWins"));
    Map<String, FieldRule> rules = new HashMap<>();
    for (Iterator<Map.Entry<String, JsonNode>> it = policy.path("fields").fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      rules.put(f.getKey(), rule(f.getValue()));
    }
    return new ConflictPolicy(def, deleteWins, rules);
  }

  private static FieldRule rule(JsonNode r) {
    if (r.has("policy")) {
      return new FieldRule.ByPolicy(PolicyName.fromWire(r.get("policy").asText()));
    }
    return switch (r.path("kind").asText()) {
      case "appendOnly" -> new FieldRule.AppendOnly();
      case "counter" -> new FieldRule.Counter();
      case "monotonic" -> new FieldRule.Monotonic(transitions(r));
      default -> throw new IllegalArgumentException("unknown field rule " + r);
    };
  }

  private static Map<String, Set<String>> transitions(JsonNode r) {
    Map<String, Set<String>> t = new HashMap<>();
    if (r.has("transitions")) {
      for (Iterator<Map.Entry<String, JsonNode>> it = r.get("transitions").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> e = it.next();
        Set<String> to = new LinkedHashSet<>();
        e.getValue().forEach(v -> to.add(v.asText()));
        t.put(e.getKey(), Set.copyOf(to));
      }
    } else {
      // An order: each value may move to any later one.
      JsonNode order = r.get("order");
      for (int i = 0; i < order.size(); i++) {
        Set<String> later = new LinkedHashSet<>();
        for (int j = i + 1; j < order.size(); j++) {
          later.add(order.get(j).asText());
        }
        t.put(order.get(i).asText(), Set.copyOf(later));
      }
    }
    return t;
  }
}
