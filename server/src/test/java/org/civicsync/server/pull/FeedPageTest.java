package org.civicsync.server.pull;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.Schemas;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.SchemaChecker;
import org.junit.jupiter.api.Test;

class FeedPageTest {
  /** The page the HTTP API sends, with data spliced in as text, is the contract's pull response, byte for byte. */
  @Test
  void aFeedPageIsWrittenExactlyAsThePullResponseItStandsFor() throws Exception {
    FeedPage page = new FeedPage(List.of(
        new FeedPage.FeedChange("appointments", UUID.randomUUID(), 2, ChangeOp.UPSERT,
            "{\"patientName\":\"Nimali \\\"Nimmi\\\" Perera\",\"clinicId\":\"clinic-badulla-03\",\"notes\":[\"first visit\"],\"age\":31}",
            Instant.parse("2026-11-22T08:02:00.401Z")),
        new FeedPage.FeedChange("subsidy_claims", UUID.randomUUID(), 3, ChangeOp.DELETE, null, Instant.parse("2026-11-22T08:02:00Z")),
        new FeedPage.FeedChange("appointments", UUID.randomUUID(), 0, ChangeOp.REMOVE, null, Instant.parse("2026-11-22T08:02:00.123456Z"))),
        "djEuMTI4MzQ", true);

    String spliced = Json.mapper().writeValueAsString(page);
    String parsed = Json.mapper().writeValueAsString(page.toResponse());

    assertThat(spliced).isEqualTo(parsed);
    java.io.ByteArrayOutputStream written = new java.io.ByteArrayOutputStream();
    page.writeTo(written);
    assertThat(written.toString(java.nio.charset.StandardCharsets.UTF_8)).as("written field by field").isEqualTo(parsed);
    JsonNode tree = Json.mapper().readTree(spliced);
    assertThat(SchemaChecker.contract(Schemas.PULL_RESPONSE).firstViolation(tree)).isEmpty();
    assertThat(tree.path("changes").get(1).has("data")).as("a tombstone has no data").isFalse();
  }
}
