package org.civicsync.core.collections;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import org.civicsync.contracts.CollectionDefinition;
import org.civicsync.core.validation.SchemaChecker;
import org.civicsync.core.validation.Violation;

/** A collection definition with its record schema compiled. Immutable and thread-safe. */
public final class CollectionSchema {
  private final CollectionDefinition definition;
  private final SchemaChecker checker;
  private final Map<String, JsonNode> defaults;
  private final org.civicsync.core.conflicts.ConflictPolicy policy;
  private final java.util.List<org.civicsync.core.rules.RecordRuleSpec> rules;
  private final org.civicsync.core.access.Grants grants;

  private CollectionSchema(CollectionDefinition definition) {
    this.definition = definition;
    this.checker = SchemaChecker.of(definition.schema());
    Map<String, JsonNode> d = new LinkedHashMap<>();
    JsonNode props = definition.schema().path("properties");
    for (Iterator<Map.Entry<String, JsonNode>> it = props.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> p = it.next();
      if (p.getValue().has("default")) {
        d.put(p.getKey(), p.getValue().get("default"));
      }
    }
    this.defaults = Map.copyOf(d);
    this.policy = org.civicsync.core.conflicts.ConflictPolicy.parse(definition.policy());
    this.rules = java.util.List.copyOf(org.civicsync.core.rules.RecordRuleSpec.parse(definition.name(), definition.rules()));
    this.grants = org.civicsync.core.access.Grants.parse(definition.access());
    crossCheck();
  }

  /**
   * Policies and rules must name fields the record schema declares, and a monotonic field's
   * values must be among the field's enum: a typo here would otherwise surface only as a strange
   * merge months later.
   */
  private void crossCheck() {
    JsonNode props = definition.schema().path("properties");
    if (!props.isObject()) {
      return;
    }
    if (definition.scopeField() != null && !"string".equals(props.path(definition.scopeField()).path("type").asText())) {
      throw new IllegalArgumentException("collection '" + name() + "': scopeField '" + definition.scopeField()
          + "' must be a string field the record schema declares");
    }
    java.util.List<String> named = new java.util.ArrayList<>(policy.fields().keySet());
    rules.forEach(r -> named.addAll(r.fields()));
    rules.forEach(r -> named.addAll(r.whereIn().keySet()));
    rules.forEach(r -> named.addAll(r.whereNotIn().keySet()));
    rules.forEach(r -> r.limitFrom().ifPresent(f -> named.addAll(f.match().values())));
    for (String f : named) {
      if (!props.has(f)) {
        throw new IllegalArgumentException("collection '" + name() + "': policy or rule names field '" + f
            + "', which the record schema does not declare");
      }
    }
    policy.fields().forEach((f, rule) -> {
      if (rule instanceof org.civicsync.core.conflicts.FieldRule.Monotonic m && props.path(f).has("enum")) {
        java.util.Set<String> allowed = new java.util.HashSet<>();
        props.path(f).get("enum").forEach(v -> allowed.add(v.asText()));
        for (String v : m.values()) {
          if (!allowed.contains(v)) {
            throw new IllegalArgumentException("collection '" + name() + "': monotonic field '" + f + "' names value '" + v
                + "', which is not in the field's enum");
          }
        }
      }
    });
  }

  /** Which role may take which action on this collection. */
  public org.civicsync.core.access.Grants grants() {
    return grants;
  }

  /** The field naming a record's org unit, if the collection is scoped. */
  public Optional<String> scopeField() {
    return Optional.ofNullable(definition.scopeField());
  }

  /**
   * The scope key of a record with this data: the scope field's text, {@code ""} when a scoped
   * record lacks it (visible to unrestricted callers only), {@code null} for an unscoped
   * collection or a tombstone's absent data in an unscoped collection.
   */
  public String scopeKey(ObjectNode data) {
    if (definition.scopeField() == null) {
      return null;
    }
    JsonNode v = data == null ? null : data.get(definition.scopeField());
    return v != null && v.isTextual() ? v.textValue() : "";
  }

  /** The collection's declarative server-authoritative rules. */
  public java.util.List<org.civicsync.core.rules.RecordRuleSpec> rules() {
    return rules;
  }

  /** How stale changes to this collection's records are settled. */
  public org.civicsync.core.conflicts.ConflictPolicy policy() {
    return policy;
  }

  /**
   * Compiles a definition.
   *
   * @throws IllegalArgumentException when the definition itself is not valid
   */
  public static CollectionSchema compile(CollectionDefinition definition) {
    Optional<Violation> bad =
        SchemaChecker.contract(org.civicsync.contracts.Schemas.COLLECTION_DEFINITION)
            .firstViolation(org.civicsync.core.json.Json.mapper().valueToTree(definition));
    if (bad.isPresent()) {
      throw new IllegalArgumentException(
          "collection definition '" + definition.name() + "' is invalid at "
              + bad.get().pointer() + ": " + bad.get().message());
    }
    return new CollectionSchema(definition);
  }

  public String name() {
    return definition.name();
  }

  public CollectionDefinition definition() {
    return definition;
  }

  /** Top-level property defaults declared by the schema, applied on create. */
  public Map<String, JsonNode> defaults() {
    return defaults;
  }

  /** The first way {@code data} breaks the record schema, with a pointer relative to the record. */
  public Optional<Violation> check(ObjectNode data) {
    return checker.firstViolation(data);
  }
}
