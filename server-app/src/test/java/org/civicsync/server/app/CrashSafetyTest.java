package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import org.civicsync.testing.Fixtures;
import org.junit.jupiter.api.Test;

/**
 * Processes killed with SIGKILL at the worst moments — the server in the middle of a large push,
 * the command-line client in the middle of its sync — lose nothing and double nothing: retries
 * with the same mutation ids settle every change exactly once.
 */
class CrashSafetyTest {
  static final String ADMIN = "csa_crash-safety-test-admin-token-0000000000";
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** A server in a child JVM, so it can be killed like a real one. */
  static final class ServerProcess implements AutoCloseable {
    final Process process;
    final int port;

    ServerProcess(Path data, int port) throws Exception {
      this(data, port, List.of());
    }

    /** @param storeArgs e.g. {@code --db-url … --db-schema …} for PostgreSQL; empty for SQLite in {@code data} */
    ServerProcess(Path data, int port, List<String> storeArgs) throws Exception {
      this.port = port;
      List<String> cmd = new ArrayList<>(List.of(java(), "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
          "org.civicsync.server.app.Main", "serve", "--host", "127.0.0.1", "--port", Integer.toString(port), "--data", data.toString(),
          "--rate-limit", "1000000"));
      cmd.addAll(storeArgs);
      ProcessBuilder pb = new ProcessBuilder(cmd);
      pb.environment().put("CIVICSYNC_ADMIN_TOKEN", ADMIN);
      pb.redirectErrorStream(true).redirectOutput(data.resolveSibling("server-" + port + "-" + System.nanoTime() + ".log").toFile());
      process = pb.start();
      HttpClient h = HttpClient.newHttpClient();
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      while (true) {
        try {
          if (h.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/health/ready")).build(),
              HttpResponse.BodyHandlers.ofString()).statusCode() == 200) {
            return;
          }
        } catch (IOException notYet) {
          // starting
        }
        if (System.nanoTime() > deadline || !process.isAlive()) {
          throw new IllegalStateException("the server process did not start");
        }
        Thread.sleep(100);
      }
    }

    void kill() throws InterruptedException {
      process.destroyForcibly(); // SIGKILL: no shutdown hook runs
      process.waitFor(30, TimeUnit.SECONDS);
    }

    @Override
    public void close() throws InterruptedException {
      kill();
    }
  }

  private static String java() {
    return System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private JsonNode call(int port, String method, String path, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .header("Authorization", "Bearer " + ADMIN).header("Content-Type", "application/json")
        .method(method, HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isBetween(200, 201);
    return Json.mapper().readTree(r.body());
  }

  private String provision(int port, String tenant) throws Exception {
    call(port, "POST", "/v1/admin/tenants", "{\"tenantId\":\"" + tenant + "\"}");
    call(port, "PUT", "/v1/admin/tenants/" + tenant + "/users/clerk", "{\"roles\":[\"admin\"]}");
    return call(port, "POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", "{\"userId\":\"clerk\",\"maxUses\":10}").get("code").asText();
  }

  private long countOnServer(int port, String code) throws Exception {
    CivicSyncClient reader = CivicSyncClient.builder().store(new InMemoryLocalStore())
        .transport(new UrlConnectionTransport(URI.create("http://127.0.0.1:" + port))).build();
    reader.enroll(code, "reader");
    reader.sync();
    return reader.collection("appointments").all().size();
  }

  @Test
  void killingTheServerInTheMiddleOfLargePushesLosesAndDoublesNothing() throws Exception {
    long seed = new Random().nextLong();
    Random rnd = new Random(seed);
    Path data = Files.createTempDirectory("crash-server").resolve("data");
    int port = freePort();
    ServerProcess server = new ServerProcess(data, port);
    String code = provision(port, "crash");
    CivicSyncClient client = CivicSyncClient.builder().store(new InMemoryLocalStore())
        .transport(new UrlConnectionTransport(URI.create("http://127.0.0.1:" + port))).batchSize(500).build();
    client.enroll(code, "tablet");
    Fixtures fx = new Fixtures(seed);
    int total = 3000;
    for (int i = 0; i < total; i++) {
      client.collection("appointments").create(fx.appointment());
    }
    List<java.util.UUID> sent = new ArrayList<>();
    client.outbox().forEach(e -> sent.add(e.mutationId()));
    try {
      for (int kill = 0; kill < 3; kill++) {
        Thread syncing = new Thread(() -> {
          try {
            client.sync();
          } catch (Exception expected) {
            // the server dies under it
          }
        });
        syncing.start();
        Thread.sleep(50 + rnd.nextInt(400));
        server.kill();
        syncing.join(60_000);
        server = new ServerProcess(data, port);
      }
      for (int attempt = 0; attempt < 20 && client.status().pending() > 0; attempt++) {
        try {
          client.sync();
        } catch (IOException retry) {
          Thread.sleep(200);
        }
      }
      assertThat(client.status().pending()).as("seed %s", seed).isZero();
      assertThat(countOnServer(port, code)).as("every booking exactly once (seed %s)", seed).isEqualTo(total);
      JsonNode audit = call(port, "GET", "/v1/admin/audit/verify?tenant=crash", "");
      assertThat(audit.get("ok").asBoolean()).as("%s", audit).isTrue();
      assertThat(audit.get("logEntries").asLong()).as("one log entry per mutation (seed %s)", seed).isEqualTo(sent.size());
    } finally {
      server.close();
    }
  }

  @Test
  void killingTheClientBetweenCommitAndPushOrDuringItsSyncLosesAndDoublesNothing() throws Exception {
    Path dir = Files.createTempDirectory("crash-client");
    int port = freePort();
    try (ServerProcess server = new ServerProcess(dir.resolve("data"), port)) {
      String code = provision(port, "cli-crash");
      String db = dir.resolve("field.db").toString();
      assertThat(run("client", "--db", db, "enroll", "--server", "http://127.0.0.1:" + port, "--code", code).waitFor()).isZero();
      // Committed locally, then the process is gone before any sync: the next sync sends it.
      StringBuilder lines = new StringBuilder();
      Fixtures fx = new Fixtures(99);
      int total = 2000;
      for (int i = 0; i < total; i++) {
        lines.append(Json.mapper().writeValueAsString(fx.appointment())).append('\n');
      }
      Path file = dir.resolve("bookings.jsonl");
      Files.writeString(file, lines, StandardCharsets.UTF_8);
      assertThat(run("client", "--db", db, "import", "appointments", "--file", file.toString()).waitFor()).isZero();
      // Killed as it starts to sync, before any push left: everything is still in its outbox.
      Process early = run("client", "--db", db, "sync");
      Thread.sleep(100);
      early.destroyForcibly();
      early.waitFor(30, TimeUnit.SECONDS);
      // Killed in the middle of its sync: some pushes committed on the server, answers lost.
      Process sync = run("client", "--db", db, "sync");
      Thread.sleep(700);
      sync.destroyForcibly();
      sync.waitFor(30, TimeUnit.SECONDS);
      Process again = run("client", "--db", db, "sync");
      assertThat(again.waitFor(120, TimeUnit.SECONDS)).isTrue();
      assertThat(again.exitValue()).as(new String(again.getInputStream().readAllBytes(), StandardCharsets.UTF_8)).isZero();
      assertThat(countOnServer(port, code)).isEqualTo(total);
      JsonNode audit = call(port, "GET", "/v1/admin/audit/verify?tenant=cli-crash", "");
      assertThat(audit.get("logEntries").asLong()).as("each imported booking logged once").isEqualTo(total);
    }
  }

  private static Process run(String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of(java(), "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
        "org.civicsync.server.app.Main"));
    cmd.addAll(List.of(args));
    return new ProcessBuilder(cmd).redirectErrorStream(true).start();
  }
}
