package org.civicsync.server.pull;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.Schemas;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.SchemaChecker;
import org.junit.jupiter.api.Test;

class FeedPageTest {
  /** The page the HTTP API sends, with data copied in as bytes, is the contract's pull response, byte for byte. */
  @Test
  void aFeedPageIsWrittenExactlyAsThePullResponseItStandsFor() throws Exception {
    FeedPage page = new FeedPage(List.of(
        new FeedPage.FeedChange("appointments", UUID.randomUUID(), 2, ChangeOp.UPSERT,
            utf8("{\"patientName\":\"Nimali \\\"Nimmi\\\" Perera\",\"clinicId\":\"clinic-badulla-03\",\"notes\":[\"first visit\",\"ගාල්ල\"],\"age\":31}"),
            Instant.parse("2026-11-22T08:02:00.401Z")),
        new FeedPage.FeedChange("subsidy_claims", UUID.randomUUID(), 3, ChangeOp.DELETE, null, Instant.parse("2026-11-22T08:02:00Z")),
        new FeedPage.FeedChange("appointments", UUID.randomUUID(), 0, ChangeOp.REMOVE, null, Instant.parse("2026-11-22T08:02:00.123456Z"))),
        "djEuMTI4MzQ", true);

    String parsed = Json.mapper().writeValueAsString(page.toResponse());

    String written = written(page);
    assertThat(written).isEqualTo(parsed);
    JsonNode tree = Json.mapper().readTree(written);
    assertThat(SchemaChecker.contract(Schemas.PULL_RESPONSE).firstViolation(tree)).isEmpty();
    assertThat(tree.path("changes").get(1).has("data")).as("a tombstone has no data").isFalse();
  }

  /**
   * Ids, instants (every precision, leap days, the turn of a century), versions, names that need
   * escaping and pages larger than the writer's buffer, at random: the bytes are the mapper's.
   */
  @Test
  void randomPagesAreWrittenExactlyAsTheMapperWritesThem() throws Exception {
    long seed = System.nanoTime();
    Random r = new Random(seed);
    String[] names = {"appointments", "a\"b", "tab\there", "ünïcode", "日本", "back\\slash", "ctl\u0001"};
    for (int p = 0; p < 40; p++) {
      List<FeedPage.FeedChange> changes = new ArrayList<>();
      int n = r.nextInt(p % 10 == 0 ? 400 : 20);
      for (int i = 0; i < n; i++) {
        ChangeOp op = ChangeOp.values()[r.nextInt(ChangeOp.values().length)];
        byte[] data = op == ChangeOp.UPSERT ? utf8("{\"n\":" + r.nextInt() + ",\"s\":\"" + "x".repeat(r.nextInt(200)) + "\"}") : null;
        changes.add(new FeedPage.FeedChange(names[r.nextInt(names.length)], new UUID(r.nextLong(), r.nextLong()),
            r.nextInt(3) == 0 ? r.nextLong() & Long.MAX_VALUE : r.nextInt(5), op, data, r.nextInt(20) == 0 ? null : instant(r)));
      }
      FeedPage page = new FeedPage(changes, names[r.nextInt(names.length)] + r.nextInt(), r.nextBoolean());
      assertThat(written(page)).as("seed %d, page %d", seed, p).isEqualTo(Json.mapper().writeValueAsString(page.toResponse()));
    }
  }

  private static Instant instant(Random r) {
    long second = switch (r.nextInt(4)) {
      case 0 -> r.nextInt(Integer.MAX_VALUE); // 1970–2038
      case 1 -> Instant.parse("2000-02-29T23:59:59Z").getEpochSecond() + r.nextInt(3) - 1;
      case 2 -> Math.floorMod(r.nextLong(), Instant.parse("9999-12-31T23:59:59Z").getEpochSecond());
      default -> -r.nextInt(Integer.MAX_VALUE); // before 1970
    };
    int nanos = switch (r.nextInt(4)) {
      case 0 -> 0;
      case 1 -> r.nextInt(1000) * 1_000_000;
      case 2 -> r.nextInt(1_000_000) * 1_000;
      default -> r.nextInt(1_000_000_000);
    };
    return Instant.ofEpochSecond(second, nanos);
  }

  private static String written(FeedPage page) throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    page.writeTo(out);
    return out.toString(StandardCharsets.UTF_8);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
