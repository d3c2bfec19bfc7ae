package org.civicsync.core.collections;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.civicsync.contracts.CollectionDefinition;
import org.civicsync.core.json.Json;

/** The collections a server (or client) knows, by name. Immutable and thread-safe. */
public final class CollectionCatalog {
  /** Names of the definitions shipped with CivicSync, the worked examples of seed 000. */
  public static final List<String> BUILT_IN = List.of("clinics", "appointments", "subsidy_claims");

  private final Map<String, CollectionSchema> byName;

  private CollectionCatalog(Map<String, CollectionSchema> byName) {
    this.byName = byName;
  }

  /**
   * A catalogue of the given definitions.
   *
   * @throws IllegalArgumentException on an invalid definition or a name given twice
   */
  public static CollectionCatalog of(Collection<CollectionDefinition> definitions) {
    Map<String, CollectionSchema> m = new LinkedHashMap<>();
    for (CollectionDefinition d : definitions) {
      if (m.containsKey(d.name())) {
        throw new IllegalArgumentException("collection '" + d.name() + "' is defined twice");
      }
      m.put(d.name(), CollectionSchema.compile(d));
    }
    // A capacity read from another collection must name one that exists, by fields it declares.
    for (CollectionSchema s : m.values()) {
      for (org.civicsync.core.rules.RecordRuleSpec r : s.rules()) {
        if (r.limitFrom().isPresent()) {
          org.civicsync.core.rules.RecordRuleSpec.LimitFrom f = r.limitFrom().get();
          CollectionSchema other = m.get(f.collection());
          if (other == null) {
            throw new IllegalArgumentException("collection '" + s.name() + "': rule " + r.id() + " reads its limit from unknown collection '"
                + f.collection() + "'");
          }
          JsonNode props = other.definition().schema().path("properties");
          java.util.List<String> named = new java.util.ArrayList<>(f.match().keySet());
          named.add(f.field());
          for (String n : named) {
            if (props.isObject() && !props.has(n)) {
              throw new IllegalArgumentException("collection '" + s.name() + "': rule " + r.id() + " names field '" + n
                  + "', which collection '" + f.collection() + "' does not declare");
            }
          }
        }
      }
    }
    return new CollectionCatalog(java.util.Collections.unmodifiableMap(m));
  }

  /** The built-in definitions, read from this package's resources. */
  public static List<CollectionDefinition> builtInDefinitions() {
    List<CollectionDefinition> out = new ArrayList<>();
    for (String name : BUILT_IN) {
      String path = "org/civicsync/core/collections/" + name + ".json";
      try (InputStream in = CollectionCatalog.class.getClassLoader().getResourceAsStream(path)) {
        if (in == null) {
          throw new IllegalStateException("missing built-in collection " + path);
        }
        JsonNode tree = Json.mapper().readTree(in);
        out.add(Json.mapper().treeToValue(tree, CollectionDefinition.class));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return out;
  }

  public Optional<CollectionSchema> find(String name) {
    return Optional.ofNullable(byName.get(name));
  }

  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  /** Every collection name, in the order given. */
  public java.util.Set<String> names() {
    return java.util.Collections.unmodifiableSet(byName.keySet());
  }

  /** Every definition, in the order given. */
  public List<CollectionDefinition> definitions() {
    return byName.values().stream().map(CollectionSchema::definition).collect(java.util.stream.Collectors.collectingAndThen(java.util.stream.Collectors.toList(), java.util.Collections::unmodifiableList));
  }
}
