package org.civicsync.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.InputStream;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.Test;

/** Holds the implementation to the test vector published in docs/protocol.md. */
class DigestVectorTest {
  @Test
  void theGoldenCreateHasTheDigestTheProtocolDocumentPublishes() throws Exception {
    JsonNode golden;
    try (InputStream in = getClass().getClassLoader()
        .getResourceAsStream("org/civicsync/contracts/examples/push-request.clinic-day.json")) {
      golden = Json.mapper().readTree(in);
    }
    Mutation first = Json.mapper().treeToValue(golden.at("/mutations/0"), Mutation.class);
    String digest = Digests.mutation(first);
    assertThat(digest).isEqualTo("d7085c4ec03d52cc33bfcd1b1a9cbcb1db0f54917ccb8d008216f4eb22e47aba");
    String doc = java.nio.file.Files.readString(java.nio.file.Path.of("..", "docs", "protocol.md"));
    assertThat(doc).contains(digest);
  }
}
