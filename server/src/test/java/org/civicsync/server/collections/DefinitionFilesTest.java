package org.civicsync.server.collections;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DefinitionFilesTest {
  @TempDir Path dir;

  @Test
  void yamlAndJsonDefinitionsJoinTheBuiltInCollections() throws Exception {
    Files.writeString(dir.resolve("land_records.yaml"), """
        name: land_records
        title: Land records
        schema:
          type: object
          required: [parcelId]
          properties:
            parcelId: {type: string}
            areaSqm: {type: number, minimum: 0}
        """);
    Files.writeString(dir.resolve("relief.json"),
        "{\"name\":\"relief_registrations\",\"schema\":{\"type\":\"object\",\"properties\":{\"household\":{\"type\":\"string\"}}}}");
    Files.writeString(dir.resolve("README.txt"), "not a definition");
    CollectionCatalog catalog = DefinitionFiles.load(Optional.of(dir));
    assertThat(catalog.definitions()).extracting(d -> d.name())
        .containsExactly("clinics", "appointments", "subsidy_claims", "land_records", "relief_registrations");
    assertThat(catalog.find("land_records").orElseThrow()
        .check(Json.mapper().createObjectNode().put("areaSqm", 10))).get()
        .satisfies(v -> assertThat(v.pointer()).isEqualTo("/parcelId"));
  }

  @Test
  void anInvalidDefinitionStopsStartUpNamingTheProblem() throws Exception {
    Files.writeString(dir.resolve("bad.json"), "{\"name\":\"Bad Name\",\"schema\":{\"type\":\"object\"}}");
    assertThatThrownBy(() -> DefinitionFiles.load(Optional.of(dir)))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("/name");
  }

  @Test
  void aCollectionDefinedTwiceIsRefused() throws Exception {
    Files.writeString(dir.resolve("dup.json"), "{\"name\":\"appointments\",\"schema\":{\"type\":\"object\"}}");
    assertThatThrownBy(() -> DefinitionFiles.load(Optional.of(dir))).hasMessageContaining("defined twice");
  }

  @Test
  void aPolicyOrRuleNamingAnUndeclaredFieldStopsStartUp() throws Exception {
    Files.writeString(dir.resolve("typo.json"), "{\"name\":\"visits\",\"schema\":{\"type\":\"object\",\"properties\":"
        + "{\"status\":{\"enum\":[\"open\",\"closed\"]}}},\"policy\":{\"fields\":{\"stauts\":{\"policy\":\"serverWins\"}}}}");
    assertThatThrownBy(() -> DefinitionFiles.load(Optional.of(dir))).hasMessageContaining("'stauts'");
  }

  @Test
  void aMonotonicValueOutsideTheFieldsEnumStopsStartUp() throws Exception {
    Files.writeString(dir.resolve("bad.json"), "{\"name\":\"visits\",\"schema\":{\"type\":\"object\",\"properties\":"
        + "{\"status\":{\"enum\":[\"open\",\"closed\"]}}},\"policy\":{\"fields\":{\"status\":{\"kind\":\"monotonic\","
        + "\"order\":[\"open\",\"closd\"]}}}}");
    assertThatThrownBy(() -> DefinitionFiles.load(Optional.of(dir))).hasMessageContaining("'closd'");
  }

  @Test
  void aCapacityReadFromAnUnknownCollectionStopsStartUp() throws Exception {
    Files.writeString(dir.resolve("rooms.json"), "{\"name\":\"rooms\",\"schema\":{\"type\":\"object\",\"properties\":"
        + "{\"site\":{\"type\":\"string\"}}},\"rules\":[{\"kind\":\"capacity\",\"fields\":[\"site\"],\"limit\":1,"
        + "\"limitFrom\":{\"collection\":\"sites\",\"match\":{\"siteId\":\"site\"},\"field\":\"rooms\"}}]}");
    assertThatThrownBy(() -> DefinitionFiles.load(Optional.of(dir))).hasMessageContaining("unknown collection 'sites'");
  }
}
