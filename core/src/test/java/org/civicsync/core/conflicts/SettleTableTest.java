package org.civicsync.core.conflicts;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.json.Json;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every policy and field kind against base/server/client triples. Each row: the field's rule, the
 * field's value in the base, on the server now, in the client's change (JSON, {@code -} for
 * absent), who wrote last by clock, and the expected settlement: {@code apply <json>} (the field's
 * resulting value), {@code drop} (server value stands, reported overridden), {@code park}, or
 * {@code reject <CODE>}.
 */
class SettleTableTest {
  private static final String EARLY = "001700000000000-00000-devA";
  private static final String LATE = "001700000000999-00000-devB";


  static Stream<Arguments> table() {
    String status = "{\"kind\":\"monotonic\",\"transitions\":{\"booked\":[\"checked_in\",\"cancelled\",\"no_show\"],\"checked_in\":[\"completed\"]}}";
    String order = "{\"kind\":\"monotonic\",\"order\":[\"submitted\",\"verified\",\"approved\",\"paid\"]}";
    return Stream.of(
        // rule, base, server, client, clientIsLater, expected
        row("{\"policy\":\"merge\"}", "1", "1", "2", true, "apply 2"),            // only the client changed it
        row("{\"policy\":\"merge\"}", "1", "2", "1", true, "none"),               // only the server changed it: client sent base back
        row("{\"policy\":\"merge\"}", "1", "2", "2", true, "apply 2"),            // both to the same value
        row("{\"policy\":\"merge\"}", "1", "2", "3", true, "park"),               // both, differently
        row("{\"policy\":\"merge\"}", "1", "2", "-", true, "park"),               // server changed, client removed
        row("{\"policy\":\"serverWins\"}", "1", "2", "3", true, "drop"),
        row("{\"policy\":\"serverWins\"}", "1", "1", "3", true, "apply 3"),       // nothing of the server's to keep
        row("{\"policy\":\"clientWins\"}", "1", "2", "3", false, "apply 3"),
        row("{\"policy\":\"clientWins\"}", "1", "2", "-", false, "apply -"),
        row("{\"policy\":\"lastWriterWins\"}", "1", "2", "3", true, "apply 3"),   // client's clock is later
        row("{\"policy\":\"lastWriterWins\"}", "1", "2", "3", false, "drop"),     // server's write is later
        row("{\"policy\":\"manual\"}", "1", "1", "3", true, "park"),              // any stale change parks
        row("{\"policy\":\"manual\"}", "1", "2", "3", true, "park"),
        row("{\"kind\":\"appendOnly\"}", "[\"a\"]", "[\"a\",\"s\"]", "[\"a\",\"c\"]", true, "apply [\"a\",\"s\",\"c\"]"),
        row("{\"kind\":\"appendOnly\"}", "[\"a\"]", "[\"a\",\"s\"]", "[\"a\",\"c\"]", false, "apply [\"a\",\"c\",\"s\"]"),
        row("{\"kind\":\"appendOnly\"}", "[\"a\",\"b\"]", "[\"a\",\"b\"]", "[\"c\"]", true, "apply [\"a\",\"b\",\"c\"]"), // nothing leaves
        row("{\"kind\":\"appendOnly\"}", "[\"a\"]", "[\"a\",\"x\"]", "[\"a\",\"x\"]", true, "apply [\"a\",\"x\"]"),
        row("{\"kind\":\"counter\"}", "10", "15", "12", true, "apply 17"),          // +5 and +2
        row("{\"kind\":\"counter\"}", "10", "15", "7", true, "apply 12"),           // +5 and -3
        row("{\"kind\":\"counter\"}", "0.5", "1.5", "1.0", true, "apply 2"),
        row("{\"kind\":\"counter\"}", "10", "10", "12", true, "apply 12"),
        row(status, "\"booked\"", "\"booked\"", "\"checked_in\"", true, "apply \"checked_in\""),
        row(status, "\"booked\"", "\"checked_in\"", "\"cancelled\"", true, "drop"),       // server passed it
        row(status, "\"booked\"", "\"checked_in\"", "\"checked_in\"", true, "none"),
        row(status, "\"checked_in\"", "\"checked_in\"", "\"booked\"", true, "reject INVALID_TRANSITION"),
        row(status, "\"booked\"", "\"booked\"", "\"completed\"", true, "apply \"completed\""),     // two steps at once
        row(status, "\"completed\"", "\"completed\"", "\"checked_in\"", true, "reject INVALID_TRANSITION"),
        row(status, "\"cancelled\"", "\"cancelled\"", "\"completed\"", true, "reject INVALID_TRANSITION"), // final
        row(status, "\"booked\"", "\"cancelled\"", "\"no_show\"", true, "drop"),         // cancelled is final
        row(order, "\"submitted\"", "\"verified\"", "\"approved\"", true, "apply \"approved\""),
        row(order, "\"submitted\"", "\"approved\"", "\"verified\"", true, "drop"),
        row(order, "\"verified\"", "\"verified\"", "\"submitted\"", true, "reject INVALID_TRANSITION"),
        row(status, "-", "-", "\"booked\"", true, "apply \"booked\""),                 // first set, to a start value
        row(status, "-", "-", "\"checked_in\"", true, "reject INVALID_TRANSITION"));   // a first value must be a start
  }

  private static Arguments row(String rule, String base, String server, String client, boolean clientLater, String expected) {
    return Arguments.of(rule, base, server, client, clientLater, expected);
  }

  @ParameterizedTest(name = "{0}: base {1}, server {2}, client {3}, clientLater {4} -> {5}")
  @MethodSource("table")
  void settlesAsDeclared(String rule, String base, String server, String client, boolean clientLater, String expected) throws Exception {
    ConflictPolicy policy = ConflictPolicy.parse(Json.mapper().readTree("{\"fields\":{\"f\":" + rule + "}}"));
    ObjectNode b = record(base);
    ObjectNode s = record(server);
    ObjectNode patch = Json.mapper().createObjectNode();
    if (client.equals("-")) {
      patch.putNull("f");
    } else {
      patch.set("f", Json.mapper().readTree(client));
    }
    String clientHlc = clientLater ? LATE : EARLY;
    String serverHlc = clientLater ? EARLY : LATE;
    boolean stale = true;
    Settlement got = Settle.update(policy, b, s, Map.of("f", serverHlc), patch, clientHlc, stale);
    String[] exp = expected.split(" ", 2);
    switch (exp[0]) {
      case "apply" -> {
        assertThat(got).isInstanceOf(Settlement.Apply.class);
        Settlement.Apply a = (Settlement.Apply) got;
        if (exp[1].equals("-")) {
          assertThat(a.data().has("f")).isFalse();
        } else {
          assertThat(Settle.same(a.data().get("f"), Json.mapper().readTree(exp[1])))
              .as("f = %s, expected %s", a.data().get("f"), exp[1]).isTrue();
        }
        assertThat(a.overridden()).isEmpty();
      }
      case "none" -> {
        assertThat(got).isInstanceOf(Settlement.Apply.class);
        Settlement.Apply a = (Settlement.Apply) got;
        assertThat(Settle.same(a.data().get("f"), s.get("f"))).isTrue();
        assertThat(a.overridden()).isEmpty();
      }
      case "drop" -> {
        assertThat(got).isInstanceOf(Settlement.Apply.class);
        Settlement.Apply a = (Settlement.Apply) got;
        assertThat(Settle.same(a.data().get("f"), s.get("f"))).isTrue();
        assertThat(a.overridden()).containsExactly("f");
      }
      case "park" -> assertThat(got).isEqualTo(new Settlement.Park(List.of("f")));
      case "reject" -> {
        assertThat(got).isInstanceOf(Settlement.Reject.class);
        assertThat(((Settlement.Reject) got).code()).isEqualTo(ErrorCode.valueOf(exp[1]));
      }
      default -> throw new IllegalArgumentException(expected);
    }
  }

  @ParameterizedTest(name = "current change: {0}")
  @MethodSource("currentRows")
  void aCurrentChangeAppliesButStillKeepsFieldKinds(String rule, String server, String client, String expected) throws Exception {
    ConflictPolicy policy = ConflictPolicy.parse(Json.mapper().readTree("{\"fields\":{\"f\":" + rule + "}}"));
    ObjectNode s = record(server);
    ObjectNode patch = Json.mapper().createObjectNode();
    patch.set("f", Json.mapper().readTree(client));
    Settlement got = Settle.update(policy, s, s, Map.of("f", EARLY), patch, LATE, false);
    if (expected.startsWith("reject")) {
      assertThat(got).isInstanceOf(Settlement.Reject.class);
    } else {
      assertThat(Settle.same(((Settlement.Apply) got).data().get("f"), Json.mapper().readTree(expected))).isTrue();
    }
  }

  static Stream<Arguments> currentRows() {
    return Stream.of(
        Arguments.of("{\"policy\":\"manual\"}", "1", "2", "2"),
        Arguments.of("{\"policy\":\"serverWins\"}", "1", "2", "2"),
        Arguments.of("{\"kind\":\"appendOnly\"}", "[\"a\",\"b\"]", "[\"b\",\"c\"]", "[\"a\",\"b\",\"c\"]"),
        Arguments.of("{\"kind\":\"monotonic\",\"order\":[\"x\",\"y\"]}", "\"y\"", "\"x\"", "reject"));
  }

  @org.junit.jupiter.api.Test
  void aFieldsClockNeverMovesBackwards() throws Exception {
    ObjectNode s = record("1");
    ObjectNode patch = Json.mapper().createObjectNode().put("f", 2);
    Settlement got = Settle.update(ConflictPolicy.DEFAULT, s, s, Map.of("f", LATE), patch, EARLY, false);
    assertThat(((Settlement.Apply) got).fieldHlc()).containsEntry("f", LATE);
  }

  @org.junit.jupiter.api.Test
  void fieldsWithoutARuleFollowTheCollectionDefault() throws Exception {
    ConflictPolicy policy = ConflictPolicy.parse(Json.mapper().readTree("{\"default\":\"serverWins\",\"deleteVsUpdate\":\"updateWins\"}"));
    assertThat(policy.rule("anything")).isEqualTo(new FieldRule.ByPolicy(PolicyName.SERVER_WINS));
    assertThat(policy.deleteWins()).isFalse();
    assertThat(ConflictPolicy.parse(null)).isEqualTo(ConflictPolicy.DEFAULT);
  }

  private static ObjectNode record(String value) throws Exception {
    ObjectNode o = Json.mapper().createObjectNode();
    if (!value.equals("-")) {
      o.set("f", Json.mapper().readTree(value));
    }
    o.put("other", "same");
    return o;
  }
}
