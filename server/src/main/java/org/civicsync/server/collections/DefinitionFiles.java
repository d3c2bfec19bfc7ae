package org.civicsync.server.collections;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.civicsync.contracts.CollectionDefinition;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;

/** Reads collection definition files ({@code *.json}, {@code *.yaml}, {@code *.yml}). */
public final class DefinitionFiles {
  private static final ObjectMapper YAML = new YAMLMapper();

  private DefinitionFiles() {}

  /**
   * The built-in collections plus every definition file directly in {@code dir}, in file-name
   * order.
   *
   * @throws IllegalArgumentException naming the file, when a definition is unreadable or invalid
   */
  public static CollectionCatalog load(Optional<Path> dir) {
    List<CollectionDefinition> all = new ArrayList<>(CollectionCatalog.builtInDefinitions());
    if (dir.isPresent()) {
      try (Stream<Path> files = Files.list(dir.get())) {
        for (Path f : files.filter(DefinitionFiles::isDefinition).sorted().toList()) {
          all.add(read(f));
        }
      } catch (IOException e) {
        throw new IllegalArgumentException("cannot read collections directory " + dir.get() + ": " + e.getMessage(), e);
      }
    }
    return CollectionCatalog.of(all);
  }

  private static boolean isDefinition(Path f) {
    String n = f.getFileName().toString();
    return Files.isRegularFile(f) && (n.endsWith(".json") || n.endsWith(".yaml") || n.endsWith(".yml"));
  }

  private static CollectionDefinition read(Path f) {
    try {
      JsonNode tree = f.toString().endsWith(".json") ? Json.mapper().readTree(f.toFile()) : YAML.readTree(f.toFile());
      return Json.mapper().treeToValue(tree, CollectionDefinition.class);
    } catch (IOException e) {
      throw new IllegalArgumentException("invalid collection definition " + f + ": " + e.getMessage(), e);
    }
  }
}
