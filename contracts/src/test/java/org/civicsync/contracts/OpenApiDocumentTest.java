package org.civicsync.contracts;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Keeps openapi.yaml honest: it is OpenAPI 3.1, every schema it references is a file of the
 * contract, every internal reference resolves, and every operation is named and secured.
 */
class OpenApiDocumentTest {

  private static final String SCHEMA_PREFIX = "schemas/";
  private static final String COMPONENT_PREFIX = "#/components/";
  private static final Set<String> HTTP_METHODS =
      Set.of("get", "put", "post", "delete", "options", "head", "patch", "trace");

  private static JsonNode document;

  @BeforeAll
  static void parseDocument() throws Exception {
    document = new YAMLMapper().readTree(Schemas.openApiYaml());
  }

  @Test
  void declaresOpenApi31() {
    assertThat(document.path("openapi").asText()).startsWith("3.1");
    assertThat(document.path("info").path("title").asText()).isNotBlank();
    assertThat(document.path("paths").isObject()).isTrue();
  }

  @Test
  void everySchemaReferenceNamesAContractSchemaFile() {
    List<String> schemaRefs =
        refs().keySet().stream().filter(ref -> ref.startsWith(SCHEMA_PREFIX)).toList();

    assertThat(schemaRefs).isNotEmpty();
    for (String ref : schemaRefs) {
      String file = stripFragment(ref.substring(SCHEMA_PREFIX.length()));
      assertThat(Schemas.ALL).as("schema file referenced as %s", ref).contains(file);
      assertThat(Schemas.text(file)).as("resource of %s", ref).isNotBlank();
    }
  }

  @Test
  void everyContractSchemaFileIsReferenced() {
    Set<String> referenced = new HashSet<>();
    for (String ref : refs().keySet()) {
      if (ref.startsWith(SCHEMA_PREFIX)) {
        referenced.add(stripFragment(ref.substring(SCHEMA_PREFIX.length())));
      }
    }
    assertThat(referenced).containsExactlyInAnyOrderElementsOf(Schemas.ALL);
  }

  @Test
  void everyInternalReferenceResolves() {
    List<String> internalRefs =
        refs().keySet().stream().filter(ref -> ref.startsWith("#")).toList();

    assertThat(internalRefs).isNotEmpty();
    for (String ref : internalRefs) {
      assertThat(ref).as("internal reference").startsWith(COMPONENT_PREFIX);
      JsonNode target = document.at(ref.substring(1));
      assertThat(target.isMissingNode()).as("%s resolves", ref).isFalse();
      assertThat(target.isObject()).as("%s is an object", ref).isTrue();
    }
  }

  @Test
  void everyReferenceIsAContractSchemaOrAComponent() {
    assertThat(refs())
        .allSatisfy(
            (ref, where) ->
                assertThat(ref.startsWith(SCHEMA_PREFIX) || ref.startsWith(COMPONENT_PREFIX))
                    .as("$ref %s at %s", ref, where)
                    .isTrue());
  }

  @Test
  void everyOperationHasAUniqueOperationId() {
    List<String> ids = new ArrayList<>();
    forEachOperation(
        (where, operation) -> {
          String id = operation.path("operationId").asText("");
          assertThat(id).as("operationId of %s", where).isNotBlank();
          ids.add(id);
        });
    assertThat(ids).isNotEmpty().doesNotHaveDuplicates();
  }

  @Test
  void everyOperationStatesItsSecurityWithTheDeclaredSchemes() {
    JsonNode schemes = document.path("components").path("securitySchemes");
    assertThat(schemes.has("deviceToken")).isTrue();
    assertThat(schemes.has("adminToken")).isTrue();
    for (String name : List.of("deviceToken", "adminToken")) {
      assertThat(schemes.path(name).path("type").asText()).isEqualTo("http");
      assertThat(schemes.path(name).path("scheme").asText()).isEqualTo("bearer");
    }

    forEachOperation(
        (where, operation) -> {
          JsonNode security = operation.path("security");
          assertThat(security.isArray()).as("security of %s is stated", where).isTrue();
          for (JsonNode requirement : security) {
            for (Map.Entry<String, JsonNode> scheme : requirement.properties()) {
              assertThat(schemes.has(scheme.getKey()))
                  .as("security scheme %s of %s", scheme.getKey(), where)
                  .isTrue();
            }
          }
        });
  }

  @Test
  void everyErrorResponseHasTheErrorBody() {
    forEachOperation(
        (where, operation) -> {
          for (Map.Entry<String, JsonNode> entry : operation.path("responses").properties()) {
            if (!entry.getKey().matches("[45]\\d\\d")) {
              continue;
            }
            JsonNode response = resolve(entry.getValue());
            JsonNode schema =
                resolve(response.path("content").path("application/json").path("schema"));
            assertThat(schema.path("$ref").asText())
                .as("error body of %s %s", where, entry.getKey())
                .isEqualTo(SCHEMA_PREFIX + Schemas.ERROR_RESPONSE);
          }
        });
  }

  @Test
  void theSchemaFileParameterListsEveryContractSchema() {
    JsonNode parameters = document.path("paths").path("/schemas/{file}").path("get").path("parameters");
    List<String> files = new ArrayList<>();
    for (JsonNode parameter : parameters) {
      if ("file".equals(parameter.path("name").asText())) {
        parameter.path("schema").path("enum").forEach(file -> files.add(file.asText()));
      }
    }
    assertThat(files).containsExactlyInAnyOrderElementsOf(Schemas.ALL);
  }

  /** Every {@code $ref} value in the document, with the JSON Pointer where it occurs. */
  private static Map<String, String> refs() {
    Map<String, String> refs = new LinkedHashMap<>();
    collectRefs(document, "", refs);
    return refs;
  }

  private static void collectRefs(JsonNode node, String pointer, Map<String, String> refs) {
    if (node.isObject()) {
      for (Map.Entry<String, JsonNode> entry : node.properties()) {
        String child = pointer + "/" + escape(entry.getKey());
        if (entry.getKey().equals("$ref") && entry.getValue().isTextual()) {
          refs.putIfAbsent(entry.getValue().asText(), child);
        } else {
          collectRefs(entry.getValue(), child, refs);
        }
      }
    } else if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        collectRefs(node.get(i), pointer + "/" + i, refs);
      }
    }
  }

  private static void forEachOperation(BiConsumer<String, JsonNode> action) {
    for (Map.Entry<String, JsonNode> path : document.path("paths").properties()) {
      for (Map.Entry<String, JsonNode> method : path.getValue().properties()) {
        if (HTTP_METHODS.contains(method.getKey())) {
          action.accept(
              method.getKey().toUpperCase(Locale.ROOT) + " " + path.getKey(), method.getValue());
        }
      }
    }
  }

  /** Follows internal {@code #/components/...} references; anything else is returned as is. */
  private static JsonNode resolve(JsonNode node) {
    JsonNode current = node;
    for (int hops = 0; hops < 10; hops++) {
      String ref = current.path("$ref").asText("");
      if (!ref.startsWith(COMPONENT_PREFIX)) {
        return current;
      }
      current = document.at(ref.substring(1));
    }
    throw new AssertionError("reference cycle at " + node);
  }

  private static String stripFragment(String ref) {
    int hash = ref.indexOf('#');
    return hash < 0 ? ref : ref.substring(0, hash);
  }

  private static String escape(String key) {
    return key.replace("~", "~0").replace("/", "~1");
  }
}
