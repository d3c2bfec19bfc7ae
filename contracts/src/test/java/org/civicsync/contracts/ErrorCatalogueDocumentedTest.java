package org.civicsync.contracts;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Keeps the error catalogue ({@link ErrorCode}), docs/protocol.md and the examples in
 * openapi.yaml in step.
 */
class ErrorCatalogueDocumentedTest {

  /** Relative to the module directory, where Maven runs the tests. */
  private static final Path PROTOCOL_MD = Path.of("..", "docs", "protocol.md");

  /** A row of the error table: {@code | `CODE` | 400 | ...} or {@code | `CODE` | per mutation ...}. */
  private static final Pattern TABLE_ROW =
      Pattern.compile("^\\|\\s*`([A-Z][A-Z0-9_]*)`\\s*\\|\\s*([^|]*?)\\s*\\|", Pattern.MULTILINE);

  private static String protocol;

  @BeforeAll
  static void readProtocol() throws Exception {
    protocol = Files.readString(PROTOCOL_MD, StandardCharsets.UTF_8);
  }

  @Test
  void everyErrorCodeIsDocumentedInTheProtocol() {
    for (ErrorCode code : ErrorCode.values()) {
      assertThat(protocol).as("docs/protocol.md mentions %s", code).contains("`" + code.name() + "`");
    }
  }

  @Test
  void theErrorTableGivesEveryCodeItsHttpStatus() {
    Map<String, String> rows = errorTableRows();

    for (ErrorCode code : ErrorCode.values()) {
      assertThat(rows).as("error table row of %s", code).containsKey(code.name());
      String status = rows.get(code.name());
      if (code.perMutation()) {
        assertThat(status).as("status column of %s", code).startsWith("per mutation");
      } else {
        assertThat(status).as("status column of %s", code).isEqualTo(Integer.toString(code.httpStatus()));
      }
    }
  }

  @Test
  void theErrorTableListsOnlyCodesOfTheCatalogue() {
    assertThat(errorTableRows().keySet()).isSubsetOf(catalogue());
  }

  @Test
  void everyErrorCodeInTheOpenApiExamplesIsInTheCatalogue() throws Exception {
    JsonNode document = new YAMLMapper().readTree(Schemas.openApiYaml());
    Set<String> used = new HashSet<>();
    collectExampleErrorCodes(document, false, used);

    assertThat(used).as("error codes in the examples").isNotEmpty();
    assertThat(catalogue()).containsAll(used);
  }

  /** Code to status column of every row of protocol.md's error table. */
  private static Map<String, String> errorTableRows() {
    Map<String, String> rows = new LinkedHashMap<>();
    Matcher row = TABLE_ROW.matcher(protocol);
    while (row.find()) {
      String status = row.group(2);
      if (status.matches("\\d{3}") || status.startsWith("per mutation")) {
        rows.put(row.group(1), status);
      }
    }
    return rows;
  }

  private static Set<String> catalogue() {
    return Arrays.stream(ErrorCode.values()).map(Enum::name).collect(Collectors.toSet());
  }

  /**
   * Collects {@code error.code} of every error object inside an {@code example} or
   * {@code examples} entry (other {@code code} fields, such as an enrollment code, are not
   * error codes).
   */
  private static void collectExampleErrorCodes(JsonNode node, boolean inExample, Set<String> codes) {
    if (node.isObject()) {
      if (inExample && node.path("error").path("code").isTextual()) {
        codes.add(node.path("error").path("code").asText());
      }
      for (Map.Entry<String, JsonNode> field : node.properties()) {
        boolean example = inExample || field.getKey().equals("example") || field.getKey().equals("examples");
        collectExampleErrorCodes(field.getValue(), example, codes);
      }
    } else if (node.isArray()) {
      for (JsonNode element : node) {
        collectExampleErrorCodes(element, inExample, codes);
      }
    }
  }
}
