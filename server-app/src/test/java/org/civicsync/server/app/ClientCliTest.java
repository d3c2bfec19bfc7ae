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
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import picocli.CommandLine;

/** {@code civicsync client …} end to end against a real server. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClientCliTest {
  private static final String ADMIN = "csa_client-cli-test-admin-token-000000000000";
  private CivicSyncServer server;
  private String base;

  @BeforeAll
  void start() throws Exception {
    server = CivicSyncServer.start(ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-cli")).withAdminToken(Optional.of(ADMIN))
        .withSecurity(new ServerConfig.Security(Duration.ofHours(24), 1_000_000, List.of())));
    base = "http://127.0.0.1:" + server.port();
    HttpClient http = HttpClient.newHttpClient();
    for (String[] c : new String[][] {{"POST", "/v1/admin/tenants", "{\"tenantId\":\"cli\"}"},
        {"PUT", "/v1/admin/tenants/cli/users/officer", "{\"roles\":[\"admin\"]}"}}) {
      http.send(HttpRequest.newBuilder(URI.create(base + c[1])).header("Authorization", "Bearer " + ADMIN)
          .header("Content-Type", "application/json").method(c[0], HttpRequest.BodyPublishers.ofString(c[2])).build(),
          HttpResponse.BodyHandlers.ofString());
    }
  }

  @AfterAll
  void stop() {
    server.close();
  }

  private String code() throws Exception {
    HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base + "/v1/admin/tenants/cli/enrollment-codes"))
        .header("Authorization", "Bearer " + ADMIN).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString("{\"userId\":\"officer\"}")).build(), HttpResponse.BodyHandlers.ofString());
    return Json.mapper().readTree(r.body()).get("code").asText();
  }

  private record Run(int exit, String out) {}

  private static Run cli(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    PrintStream old = System.out;
    System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
    try {
      int exit = new CommandLine(new Main()).execute(args);
      return new Run(exit, out.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(old);
    }
  }

  @Test
  void aFieldOfficerCapturesOfflineImportsAndSyncsFromTheCommandLine() throws Exception {
    Path db = Files.createTempDirectory("cli-client").resolve("field.db");
    String d = db.toString();
    assertThat(cli("client", "--db", d, "enroll", "--server", base, "--code", code(), "--name", "laptop").exit()).isZero();
    Run created = cli("client", "--db", d, "create", "appointments", "--data",
        "{\"patientName\":\"Nimali Perera\",\"clinicId\":\"clinic-1\",\"slotStart\":\"2026-12-01T03:00:00Z\"}");
    assertThat(created.exit()).isZero();
    String id = created.out().trim();
    assertThat(cli("client", "--db", d, "update", "appointments", id, "--data", "{\"patientPhone\":\"+94771234567\"}").exit()).isZero();
    Path lines = db.resolveSibling("claims.jsonl");
    Files.writeString(lines, "{\"farmerId\":\"F-1\",\"crop\":\"paddy\",\"season\":\"maha-2026\"}\n"
        + "{\"farmerId\":\"F-2\",\"crop\":\"paddy\",\"season\":\"maha-2026\"}\n\n{\"crop\":\"paddy\"}\n");
    Run imported = cli("client", "--db", d, "import", "subsidy_claims", "--file", lines.toString());
    assertThat(imported.exit()).as("one line lacks farmerId").isEqualTo(2);
    assertThat(imported.out()).contains("2 record(s) created");
    JsonNode status = Json.mapper().readTree(cli("client", "--db", d, "status", "--json").out());
    assertThat(status.get("pending").asLong()).isEqualTo(3);
    assertThat(cli("client", "--db", d, "outbox", "--json").out().lines()).hasSize(3)
        .allSatisfy(l -> assertThat(l).contains("\"state\":\"pending\""));
    Run sync = cli("client", "--db", d, "sync");
    assertThat(sync.exit()).as(sync.out()).isZero();
    assertThat(sync.out()).contains("pushed 3");
    assertThat(Json.mapper().readTree(cli("client", "--db", d, "status", "--json").out()).get("pending").asLong()).isZero();
    assertThat(cli("client", "--db", d, "list", "appointments", "--json").out()).contains(id).contains("+94771234567");
  }

  @Test
  void syncWithoutANetworkFailsWithAReasonAndKeepsTheOutbox() throws Exception {
    Path db = Files.createTempDirectory("cli-offline").resolve("field.db");
    String d = db.toString();
    assertThat(cli("client", "--db", d, "enroll", "--server", base, "--code", code()).exit()).isZero();
    // Point the client at a port where nothing listens.
    try (var store = org.civicsync.client.store.sqlite.SqliteLocalStore.open(db)) {
      store.transaction(tx -> {
        tx.putSetting(ClientCommand.SERVER_URL, "http://127.0.0.1:9");
        return null;
      });
    }
    assertThat(cli("client", "--db", d, "create", "appointments", "--data",
        "{\"patientName\":\"Kasun\",\"clinicId\":\"clinic-2\",\"slotStart\":\"2026-12-02T03:00:00Z\"}").exit()).isZero();
    assertThat(cli("client", "--db", d, "sync").exit()).isNotZero();
    assertThat(Json.mapper().readTree(cli("client", "--db", d, "status", "--json").out()).get("pending").asLong()).isEqualTo(1);
  }
}
