package org.civicsync.server.store;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.Test;

class StoreJsonTest {
  private static final JsonNodeFactory F = JsonNodeFactory.instance;

  @Test
  void compactReturnsCompactTextItself() {
    byte[] bytes = "{\"a\":\"b c\",\"d\":[1,2]}".getBytes(StandardCharsets.UTF_8);
    assertThat(StoreJson.compact(bytes)).isSameAs(bytes);
  }

  @Test
  void compactDropsWhitespaceOutsideStringsAndKeepsStringsAsTheyAre() {
    String jsonb = "{\"a\": 1, \"b\": [true, null, 2.50], \"c\": {\"d\": \"x y\\\" , \\\\\"}, \"名前\": \"日 本\\t\"}";
    assertThat(new String(StoreJson.compact(jsonb.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8))
        .isEqualTo("{\"a\":1,\"b\":[true,null,2.50],\"c\":{\"d\":\"x y\\\" , \\\\\"},\"名前\":\"日 本\\t\"}");
  }

  /** Random trees printed with spaces and newlines everywhere JSON allows them come back as the same tree, compact. */
  @Test
  void compactOfAnyPrettyPrintedTreeIsTheSameTreeWithoutWhitespace() throws Exception {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    for (int i = 0; i < 500; i++) {
      ObjectNode tree = object(random, 3);
      String pretty = Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(tree);
      String compact = new String(StoreJson.compact(pretty.getBytes(StandardCharsets.UTF_8)), StandardCharsets.UTF_8);
      assertThat(compact).as("seed %d", seed).isEqualTo(Json.mapper().writeValueAsString(tree));
      assertThat(Json.mapper().readTree(compact)).as("seed %d", seed).isEqualTo(tree);
    }
  }

  private static ObjectNode object(Random r, int depth) {
    ObjectNode o = F.objectNode();
    int n = r.nextInt(5);
    for (int i = 0; i < n; i++) {
      o.set(string(r), value(r, depth - 1));
    }
    return o;
  }

  private static JsonNode value(Random r, int depth) {
    switch (depth <= 0 ? r.nextInt(4) : r.nextInt(6)) {
      case 0:
        return F.textNode(string(r));
      case 1:
        return F.numberNode(r.nextInt(2000) - 1000);
      case 2:
        return r.nextBoolean() ? F.booleanNode(r.nextBoolean()) : F.nullNode();
      case 3:
        return F.numberNode(r.nextDouble() * 100);
      case 4: {
        ArrayNode a = F.arrayNode();
        int n = r.nextInt(4);
        for (int i = 0; i < n; i++) {
          a.add(value(r, depth - 1));
        }
        return a;
      }
      default:
        return object(r, depth - 1);
    }
  }

  /** Strings full of what a naive whitespace stripper would break: spaces, quotes, backslashes, escapes. */
  private static String string(Random r) {
    String alphabet = "ab \"\\\t\n{}[],:é日";
    StringBuilder sb = new StringBuilder();
    int n = r.nextInt(8);
    for (int i = 0; i < n; i++) {
      sb.append(alphabet.charAt(r.nextInt(alphabet.length())));
    }
    return sb.toString();
  }
}
