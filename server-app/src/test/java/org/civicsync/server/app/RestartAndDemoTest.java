package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;
import org.civicsync.testing.Fixtures;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** What survives a restart, demo mode, and the command line. */
class RestartAndDemoTest {
  private final HttpClient http = HttpClient.newHttpClient();

  @Test
  void acknowledgedPushesSurviveARestartAndStillReplay() throws Exception {
    Path data = Files.createTempDirectory("civicsync-restart");
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDataDir(data).withDemo(true);
    Fixtures fx = new Fixtures(7);
    Mutation m = fx.create(fx.uuid(), fx.appointment().put("clinicId", "clinic-badulla-03"));
    String body;
    String token;
    org.civicsync.core.signing.Ed25519.KeyPair keys = org.civicsync.core.signing.Ed25519.generate();
    try (CivicSyncServer first = CivicSyncServer.start(config)) {
      String code = first.demoEnrollmentCode().orElseThrow().code();
      assertThat(first.generatedAdminToken()).as("generated at the first start").isPresent();
      JsonNode enrolled = call(first, "POST", "/v1/devices/enroll", null,
          "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"t\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}");
      token = enrolled.get("token").asText();
      m = org.civicsync.core.signing.Envelopes.sign(m, CivicSyncServer.DEMO_TENANT, UUID.fromString(enrolled.get("deviceId").asText()),
          keys.privateKey());
      body = "{\"mutations\":[" + Json.mapper().writeValueAsString(m) + "]}";
      assertThat(enrolled.get("tenantId").asText()).isEqualTo(CivicSyncServer.DEMO_TENANT);
      assertThat(call(first, "POST", "/v1/sync/push", token, body).at("/results/0/status").asText()).isEqualTo("applied");
    }
    try (CivicSyncServer second = CivicSyncServer.start(config)) {
      assertThat(second.generatedAdminToken()).as("not regenerated: its hash is stored").isEmpty();
      JsonNode replay = call(second, "POST", "/v1/sync/push", token, body);
      assertThat(replay.at("/results/0/replayed").asBoolean()).isTrue();
      JsonNode pulled = call(second, "GET", "/v1/sync/pull", token, null);
      assertThat(pulled.get("changes")).hasSize(1);
      assertThat(UUID.fromString(pulled.at("/changes/0/recordId").asText())).isEqualTo(m.recordId());
    }
  }

  @Test
  void commandLineHelpListsTheCommands() {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CommandLine cli = new CommandLine(new Main());
    cli.setOut(new java.io.PrintWriter(new PrintStream(out, true, StandardCharsets.UTF_8), true));
    assertThat(cli.execute("--help")).isZero();
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("serve", "rebuild-projections");
  }

  @Test
  void rebuildProjectionsCommandRebuildsEveryTenant() throws Exception {
    Path data = Files.createTempDirectory("civicsync-rebuild");
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDataDir(data).withDemo(true)
        .withAdminToken(Optional.of("csa_rebuild-test-token-000000000000000"));
    Fixtures fx = new Fixtures(11);
    org.civicsync.core.signing.Ed25519.KeyPair keys = org.civicsync.core.signing.Ed25519.generate();
    try (CivicSyncServer s = CivicSyncServer.start(config)) {
      JsonNode enrolled = call(s, "POST", "/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + s.demoEnrollmentCode().orElseThrow().code()
          + "\",\"deviceName\":\"t\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}");
      String token = enrolled.get("token").asText();
      UUID device = UUID.fromString(enrolled.get("deviceId").asText());
      StringBuilder body = new StringBuilder("{\"mutations\":[");
      for (int i = 0; i < 2; i++) {
        Mutation m = org.civicsync.core.signing.Envelopes.sign(fx.create(fx.uuid(), fx.appointment().put("clinicId", "clinic-badulla-03")),
            CivicSyncServer.DEMO_TENANT, device, keys.privateKey());
        body.append(i == 0 ? "" : ",").append(Json.mapper().writeValueAsString(m));
      }
      assertThat(call(s, "POST", "/v1/sync/push", token, body + "]}").at("/results/1/status").asText()).isEqualTo("applied");
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertThat(new CommandLine(new Main()).execute("rebuild-projections", "--data", data.toString())).isZero();
    } finally {
      System.setOut(old);
    }
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("tenant demo: 2 records rebuilt");
    out.reset();
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      assertThat(new CommandLine(new Main()).execute("audit", "verify", "--data", data.toString())).isZero();
      assertThat(new CommandLine(new Main()).execute("enrollment-code", "--data", data.toString(), "--tenant", "demo",
          "--user", CivicSyncServer.DEMO_USER)).isZero();
    } finally {
      System.setOut(old);
    }
    assertThat(out.toString(StandardCharsets.UTF_8)).contains("tenant demo: ok").contains("Enrollment code for demo-nurse").contains("\u2588");
  }

  private JsonNode call(CivicSyncServer s, String method, String path, String token, String body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + s.port() + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json");
    if (token != null) {
      b.header("Authorization", "Bearer " + token);
    }
    HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isBetween(200, 201);
    return Json.mapper().readTree(r.body());
  }
}
