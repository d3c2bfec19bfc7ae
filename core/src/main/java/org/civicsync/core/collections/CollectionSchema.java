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
