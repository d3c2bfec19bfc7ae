package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.civicsync.contracts.Schemas;
import org.junit.jupiter.api.Test;

/** The routes the server registers and the OpenAPI document must name exactly the same operations. */
class OpenApiRoutesTest {
  private static final Set<String> METHODS = Set.of("get", "put", "post", "delete", "patch", "head", "options");

  @Test
  void everyRegisteredRouteIsDocumentedAndEveryDocumentedOperationIsRegistered() throws Exception {
    JsonNode doc = new YAMLMapper().readTree(Schemas.openApiYaml());
    Set<String> documented = new HashSet<>();
    for (Iterator<Map.Entry<String, JsonNode>> paths = doc.get("paths").fields(); paths.hasNext(); ) {
      Map.Entry<String, JsonNode> p = paths.next();
      for (Iterator<String> ops = p.getValue().fieldNames(); ops.hasNext(); ) {
        String op = ops.next();
        if (METHODS.contains(op)) {
          documented.add(op.toUpperCase(Locale.ROOT) + " " + p.getKey());
        }
      }
    }
    Set<String> registered = HttpApi.ROUTES.stream().map(r -> r.method() + " " + r.path()).collect(Collectors.toSet());
    assertThat(documented).containsExactlyInAnyOrderElementsOf(registered);
  }
}
