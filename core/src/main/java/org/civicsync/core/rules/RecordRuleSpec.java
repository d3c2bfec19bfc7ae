package org.civicsync.core.rules;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.canonical.Jcs;

/**
 * One declarative rule of a collection (schema {@code collection-definition.schema.json}, member
 * {@code rules}): records that match {@code where} may share one combination of {@code fields}
 * values at most {@code limit} times ({@code unique} is a limit of 1).
 */
public record RecordRuleSpec(
    String id, boolean unique, List<String> fields, int limit, Map<String, Set<String>> whereIn,
    Map<String, Set<String>> whereNotIn, Optional<String> message, Optional<LimitFrom> limitFrom) {

  /**
   * Where a capacity's limit is read per combination: the record of {@code collection} whose
   * fields (keys of {@code match}) equal this record's fields (values of {@code match}); its
   * {@code field} is the limit. Without such a record (or a whole number in it), {@code limit}.
   */
  public record LimitFrom(String collection, Map<String, String> match, String field) {
    public LimitFrom {
      match = Map.copyOf(match);
    }

    /** The lookup's field values for a record's data; empty when the record lacks one. */
    public Optional<Map<String, String>> lookup(ObjectNode data) {
      Map<String, String> out = new java.util.TreeMap<>();
      for (Map.Entry<String, String> m : match.entrySet()) {
        JsonNode v = data.get(m.getValue());
        if (v == null || v.isNull() || v.isContainerNode()) {
          return Optional.empty();
        }
        out.put(m.getKey(), v.isTextual() ? v.textValue() : v.toString());
      }
      return Optional.of(out);
    }
  }

  /** Reads the {@code rules} array of a collection definition (already schema-checked). */
  public static List<RecordRuleSpec> parse(String collection, JsonNode rules) {
    List<RecordRuleSpec> out = new ArrayList<>();
    if (rules == null || !rules.isArray()) {
      return out;
    }
    for (JsonNode r : rules) {
      boolean unique = r.path("kind").asText().equals("unique");
      List<String> fields = new ArrayList<>();
      r.path("fields").forEach(f -> fields.add(f.asText()));
      String name = r.has("name") ? r.get("name").asText() : r.path("kind").asText() + ":" + String.join("+", fields);
      Map<String, Set<String>> in = new java.util.HashMap<>();
      Map<String, Set<String>> notIn = new java.util.HashMap<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = r.path("where").fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> w = it.next();
        if (w.getValue().has("in")) {
          in.put(w.getKey(), strings(w.getValue().get("in")));
        }
        if (w.getValue().has("notIn")) {
          notIn.put(w.getKey(), strings(w.getValue().get("notIn")));
        }
      }
      Optional<LimitFrom> from = Optional.empty();
      if (r.has("limitFrom")) {
        JsonNode lf = r.get("limitFrom");
        Map<String, String> match = new java.util.LinkedHashMap<>();
        lf.path("match").fields().forEachRemaining(e -> match.put(e.getKey(), e.getValue().asText()));
        from = Optional.of(new LimitFrom(lf.path("collection").asText(), match, lf.path("field").asText()));
      }
      out.add(new RecordRuleSpec(collection + "/" + name, unique, List.copyOf(fields), unique ? 1 : r.path("limit").asInt(1),
          Map.copyOf(in), Map.copyOf(notIn), r.has("message") ? Optional.of(r.get("message").asText()) : Optional.empty(), from));
    }
    return out;
  }

  /** The claim a record in this state holds under this rule, if the rule counts it. */
  public Optional<Claim> claimOf(ObjectNode data) {
    if (data == null) {
      return Optional.empty();
    }
    for (Map.Entry<String, Set<String>> w : whereIn.entrySet()) {
      if (!data.hasNonNull(w.getKey()) || !w.getValue().contains(data.get(w.getKey()).asText())) {
        return Optional.empty();
      }
    }
    for (Map.Entry<String, Set<String>> w : whereNotIn.entrySet()) {
      if (data.hasNonNull(w.getKey()) && w.getValue().contains(data.get(w.getKey()).asText())) {
        return Optional.empty();
      }
    }
    ArrayNode values = JsonNodeFactory.instance.arrayNode();
    for (String f : fields) {
      if (!data.hasNonNull(f)) {
        return Optional.empty(); // a record without the fields is not in any combination
      }
      values.add(data.get(f));
    }
    String canonical = Jcs.canonicalString(values);
    return Optional.of(new Claim(id, Digests.sha256Hex(canonical.getBytes(StandardCharsets.UTF_8)).substring(0, 40)));
  }

  public ErrorCode code() {
    return unique ? ErrorCode.UNIQUE_VIOLATION : ErrorCode.CAPACITY_EXCEEDED;
  }

  /** The message for a breach, with {@code {field}} placeholders filled from the record. */
  public String breachMessage(ObjectNode data) {
    return breachMessage(data, limit);
  }

  /** The message for a breach of a limit read for this combination. */
  public String breachMessage(ObjectNode data, int limit) {
    String template = message.orElseGet(() -> unique
        ? "another record already has the same " + String.join(", ", fields)
        : "the limit of " + limit + " for this " + String.join(", ", fields) + " is reached");
    String out = template;
    for (Iterator<Map.Entry<String, JsonNode>> it = data.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      out = out.replace("{" + f.getKey() + "}", f.getValue().isTextual() ? f.getValue().asText() : f.getValue().toString());
    }
    return out.replace("{limit}", Integer.toString(limit));
  }

  private static Set<String> strings(JsonNode arr) {
    Set<String> s = new HashSet<>();
    arr.forEach(v -> s.add(v.asText()));
    return Set.copyOf(s);
  }
}
