package org.civicsync.core;

import static org.assertj.core.api.Assertions.assertThat;

import org.civicsync.core.canonical.Digests;
import org.civicsync.core.canonical.Jcs;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** RFC 8785 behaviour, with vectors from the RFC and its reference implementation's tests. */
class JcsTest {
  @Test
  void membersAreSortedByUtf16CodeUnitsAndWhitespaceIsDropped() throws Exception {
    // RFC 8785 section 3.2.3: "\u20ac" (euro) sorts after "\ud83d\ude00" (emoji) in UTF-16.
    String in = "{ \"\\u20ac\": \"Euro Sign\", \"\\r\": \"Carriage Return\", \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\","
        + " \"1\": \"One\", \"\\ud83d\\ude00\": \"Emoji: Grinning Face\", \"\\u0080\": \"Control\", \"\\u00f6\": \"Latin Small Letter O With Diaeresis\" }";
    String out = Jcs.canonicalString(Json.mapper().readTree(in));
    assertThat(out).isEqualTo("{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\","
        + "\"\u20ac\":\"Euro Sign\",\"\ud83d\ude00\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}");
  }

  @ParameterizedTest
  @CsvSource(delimiter = '|', value = {
      "1e30|1e+30",
      "4.50|4.5",
      "0.002|0.002",
      "1e-27|1e-27",
      "-0|0",
      "100|100",
      "9007199254740992|9007199254740992",
      "333333333.33333329|333333333.3333333",
      "1E21|1e+21",
      "1E20|100000000000000000000",
      "0.000001|0.000001",
      "0.0000001|1e-7"})
  void numbersAreWrittenAsEcmaScriptDoes(String in, String expected) throws Exception {
    assertThat(Jcs.canonicalString(Json.mapper().readTree(in))).isEqualTo(expected);
  }

  @Test
  void stringsEscapeOnlyWhatJsonRequires() throws Exception {
    String in = "\"tab\\there \\u0001 quote\\\" slash\\/ \\u00e9\"";
    assertThat(Jcs.canonicalString(Json.mapper().readTree(in))).isEqualTo("\"tab\\there \\u0001 quote\\\" slash/ \u00e9\"");
  }

  @Test
  void digestIgnoresSpacingAndMemberOrder() throws Exception {
    String a = Digests.of(Json.mapper().readTree("{\"b\":[1,2,{\"y\":true,\"x\":null}],\"a\":\"z\"}"));
    String b = Digests.of(Json.mapper().readTree("{ \"a\" : \"z\", \"b\" : [ 1, 2.0, { \"x\" : null, \"y\" : true } ] }"));
    assertThat(a).isEqualTo(b).hasSize(64);
  }

  @Test
  void integersAreWrittenAsTheDoubleTheyAreEqualTo() throws Exception {
    long seed = System.nanoTime();
    java.util.Random r = new java.util.Random(seed);
    for (int i = 0; i < 20_000; i++) {
      long v = switch (i % 4) {
        case 0 -> r.nextInt(1000) - 500;
        case 1 -> r.nextLong() % (1L << 53);
        case 2 -> (r.nextBoolean() ? 1 : -1) * ((1L << 53) + r.nextInt(2000) - 1000);
        default -> i == 3 ? Long.MIN_VALUE : i == 7 ? Long.MAX_VALUE : r.nextLong();
      };
      String expected = org.erdtman.jcs.NumberToJSON.serializeNumber((double) v);
      assertThat(Jcs.canonicalString(Json.mapper().getNodeFactory().numberNode(v))).as("seed %s: %s", seed, v).isEqualTo(expected);
      assertThat(Jcs.canonicalString(Json.mapper().readTree(Long.toString(v)))).as("seed %s: %s", seed, v).isEqualTo(expected);
    }
  }
}
