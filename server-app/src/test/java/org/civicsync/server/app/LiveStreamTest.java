package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.TestPostgres;
import org.junit.jupiter.api.Test;

/**
 * {@code GET /v1/sync/stream}: a device hears within a second of a commit that concerns it, on
 * the instance that made the commit and on another instance sharing the database, and hears
 * nothing of commits outside its scope.
 */
class LiveStreamTest {
  private static final String ADMIN = "csa_live-stream-test-admin-token-000000000000";
  private static final Duration WITHIN = Duration.ofSeconds(1);
  private final HttpClient http = HttpClient.newHttpClient();
  private final Fixtures fx = new Fixtures(4242);

  private record Dev(String token, UUID id, Ed25519.KeyPair keys, String tenant) {}

  /** The lines of one open stream, read on a thread of their own. */
  private final class Listener implements AutoCloseable {
    final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    final HttpResponse<java.util.stream.Stream<String>> response;
    final Thread reader;

    Listener(String url, Optional<String> bearer, String... headers) throws Exception {
      HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url)).header("Accept", "text/event-stream");
      bearer.ifPresent(t -> b.header("Authorization", "Bearer " + t));
      if (headers.length > 0) {
        b.headers(headers);
      }
      response = http.send(b.build(), HttpResponse.BodyHandlers.ofLines());
      reader = Thread.ofVirtual().start(() -> {
        try {
          response.body().forEach(lines::add);
        } catch (RuntimeException closed) {
          // the stream was closed by the test
        }
      });
    }

    /** The next event's name, or empty when none comes within {@code wait} (heartbeats skipped). */
    Optional<String> nextEvent(Duration wait) throws Exception {
      long deadline = System.nanoTime() + wait.toNanos();
      while (true) {
        long left = deadline - System.nanoTime();
        String line = left <= 0 ? null : lines.poll(left, TimeUnit.NANOSECONDS);
        if (line == null) {
          return Optional.empty();
        }
        if (line.startsWith("event: ")) {
          String event = line.substring(7);
          // An event's lines come together: its id, then its data.
          for (String more = lines.poll(WITHIN.toNanos(), TimeUnit.NANOSECONDS); more != null && !more.isEmpty();
              more = lines.poll(WITHIN.toNanos(), TimeUnit.NANOSECONDS)) {
            if (more.startsWith("data: ")) {
              data = Json.mapper().readTree(more.substring(6));
            }
          }
          return Optional.of(event);
        }
      }
    }

    /** The data of the last event {@link #nextEvent} returned. */
    JsonNode data;

    @Override
    public void close() {
      response.body().close();
      reader.interrupt();
    }
  }

  private HttpResponse<String> send(String base, String method, String path, String bearer, String body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private String tenantWithClinics(String base) throws Exception {
    String tenant = "live-" + System.nanoTime();
    assertThat(send(base, "POST", "/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "\"}").statusCode()).isEqualTo(201);
    send(base, "PUT", "/v1/admin/tenants/" + tenant + "/org-units/province", ADMIN, "{\"name\":\"province\"}");
    send(base, "PUT", "/v1/admin/tenants/" + tenant + "/org-units/clinic-a", ADMIN, "{\"name\":\"a\",\"parent\":\"province\"}");
    send(base, "PUT", "/v1/admin/tenants/" + tenant + "/org-units/clinic-b", ADMIN, "{\"name\":\"b\",\"parent\":\"province\"}");
    return tenant;
  }

  private Dev device(String base, String tenant, String user, String unit) throws Exception {
    send(base, "PUT", "/v1/admin/tenants/" + tenant + "/users/" + user, ADMIN, "{\"roles\":[\"fieldWorker\"],\"orgUnits\":[\"" + unit + "\"]}");
    String code = Json.mapper().readTree(send(base, "POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN,
        "{\"userId\":\"" + user + "\"}").body()).get("code").asText();
    Ed25519.KeyPair keys = Ed25519.generate();
    JsonNode e = Json.mapper().readTree(send(base, "POST", "/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code
        + "\",\"deviceName\":\"tab\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}").body());
    return new Dev(e.get("token").asText(), UUID.fromString(e.get("deviceId").asText()), keys, tenant);
  }

  private void book(String base, Dev d, String clinic) throws Exception {
    Mutation m = fx.create(fx.uuid(), fx.appointment().put("clinicId", clinic));
    ObjectNode body = Json.mapper().createObjectNode();
    body.putArray("mutations").add(Json.mapper().<JsonNode>valueToTree(Envelopes.sign(m, d.tenant(), d.id(), d.keys().privateKey())));
    HttpResponse<String> r = send(base, "POST", "/v1/sync/push", d.token(), body.toString());
    assertThat(r.body()).contains("\"applied\"");
  }

  private static ServerConfig config() throws Exception {
    return ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDataDir(Files.createTempDirectory("civicsync-stream-test"))
        .withAdminToken(Optional.of(ADMIN)).withStreamHeartbeat(Duration.ofMillis(300));
  }

  @Test
  void aDeviceHearsOfACommitInItsScopeWithinASecondAndOfNoneOutsideIt() throws Exception {
    try (CivicSyncServer server = CivicSyncServer.start(config())) {
      String base = "http://127.0.0.1:" + server.port();
      String tenant = tenantWithClinics(base);
      Dev writer = device(base, tenant, "writer", "province");
      Dev sameClinic = device(base, tenant, "same", "clinic-a");
      Dev otherClinic = device(base, tenant, "other", "clinic-b");
      try (Listener same = new Listener(base + "/v1/sync/stream", Optional.of(sameClinic.token()));
          Listener other = new Listener(base + "/v1/sync/stream?access_token=" + otherClinic.token(), Optional.empty())) {
        assertThat(same.response.statusCode()).isEqualTo(200);
        assertThat(same.response.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/event-stream");
        assertThat(same.nextEvent(WITHIN)).contains("ready");
        assertThat(other.nextEvent(WITHIN)).as("a token in the query works for EventSource").contains("ready");

        assertThat(same.data.has("committedAt")).as("ready tells no commit's time").isFalse();
        java.time.Instant before = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MICROS);
        book(base, writer, "clinic-a");
        java.time.Instant after = java.time.Instant.now();
        assertThat(same.nextEvent(WITHIN)).as("a booking at its clinic").contains("changes");
        assertThat(same.data.get("head").asLong()).isPositive();
        assertThat(java.time.Instant.parse(same.data.get("committedAt").asText())).as("when the booking committed").isBetween(before, after);
        assertThat(other.nextEvent(WITHIN)).as("nothing of another clinic's booking").isEmpty();
        String line = same.lines.poll(2 * WITHIN.toMillis(), TimeUnit.MILLISECONDS);
        while (line != null && !line.equals(": heartbeat")) {
          line = same.lines.poll(2 * WITHIN.toMillis(), TimeUnit.MILLISECONDS);
        }
        assertThat(line).as("an idle stream gets heartbeats (every 300 ms here)").isEqualTo(": heartbeat");
      }
      // A device that reconnects with an older Last-Event-ID hears at once that it missed something.
      try (Listener back = new Listener(base + "/v1/sync/stream", Optional.of(sameClinic.token()), "Last-Event-ID", "0")) {
        assertThat(back.nextEvent(WITHIN)).contains("changes");
      }
      // Revoking a device ends its open stream at once; it cannot open another.
      try (Listener revokedSoon = new Listener(base + "/v1/sync/stream", Optional.of(otherClinic.token()))) {
        assertThat(revokedSoon.nextEvent(WITHIN)).contains("ready");
        assertThat(send(base, "POST", "/v1/admin/devices/" + otherClinic.id() + "/revoke", ADMIN, "{}").statusCode()).isEqualTo(200);
        revokedSoon.reader.join(WITHIN.toMillis());
        assertThat(revokedSoon.reader.isAlive()).as("the stream ended").isFalse();
      }
      assertThat(send(base, "GET", "/v1/sync/stream", otherClinic.token(), null).statusCode()).isEqualTo(403);
      HttpResponse<String> refused = send(base, "GET", "/v1/sync/stream?access_token=csd_not-a-token", null, null);
      assertThat(refused.statusCode()).isEqualTo(401);
      assertThat(refused.body()).contains("UNAUTHENTICATED");
      assertThat(send(base, "GET", "/v1/sync/stream", ADMIN, null).statusCode()).as("the admin has no stream").isEqualTo(403);
    }
  }

  @Test
  void stoppingTheServerEndsItsOpenStreamsAndWaitsForNone() throws Exception {
    CivicSyncServer server = CivicSyncServer.start(config());
    Listener open;
    try {
      String base = "http://127.0.0.1:" + server.port();
      Dev d = device(base, tenantWithClinics(base), "someone", "clinic-a");
      open = new Listener(base + "/v1/sync/stream", Optional.of(d.token()));
      assertThat(open.nextEvent(WITHIN)).contains("ready");
      assertThat(server.inFlight()).as("an open stream's request is in flight until its response completes").isEqualTo(1);
      // A device that goes away is noticed at the next write to it (a heartbeat here), and its
      // request ends.
      try (Listener leaving = new Listener(base + "/v1/sync/stream", Optional.of(d.token()))) {
        assertThat(leaving.nextEvent(WITHIN)).contains("ready");
        assertThat(server.inFlight()).isEqualTo(2);
      }
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (server.inFlight() > 1 && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(server.inFlight()).as("the stream of the device that left ended").isEqualTo(1);
    } catch (Exception | AssertionError e) {
      server.close();
      throw e;
    }
    long started = System.nanoTime();
    server.close();
    assertThat(Duration.ofNanos(System.nanoTime() - started)).as("a live stream does not hold the stop up").isLessThan(Duration.ofSeconds(5));
    open.reader.join(WITHIN.toMillis());
    assertThat(open.reader.isAlive()).as("the device's stream ended with the server").isFalse();
    open.close();
  }

  @Test
  void aCommitOnOneInstanceReachesAStreamOnAnotherThroughPostgres() throws Exception {
    String schema = TestPostgres.freshSchema();
    try {
      ServerConfig onPg = config().withDb(Optional.of(TestPostgres.jdbcUrl()), Optional.empty(), Optional.empty(), schema);
      try (CivicSyncServer a = CivicSyncServer.start(onPg); CivicSyncServer b = CivicSyncServer.start(onPg.withDataDir(Files.createTempDirectory("b")))) {
        String baseA = "http://127.0.0.1:" + a.port();
        String baseB = "http://127.0.0.1:" + b.port();
        String tenant = tenantWithClinics(baseA);
        Dev writer = device(baseA, tenant, "writer", "province");
        Dev reader = device(baseB, tenant, "reader", "clinic-a");
        try (Listener onB = new Listener(baseB + "/v1/sync/stream", Optional.of(reader.token()))) {
          assertThat(onB.nextEvent(WITHIN)).contains("ready");
          long sent = System.nanoTime();
          java.time.Instant before = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MICROS);
          book(baseA, writer, "clinic-a");
          java.time.Instant after = java.time.Instant.now();
          assertThat(onB.nextEvent(WITHIN)).as("pushed on instance A, heard on instance B").contains("changes");
          assertThat(java.time.Instant.parse(onB.data.get("committedAt").asText())).as("A's commit time, through PostgreSQL")
              .isBetween(before, after);
          assertThat(Duration.ofNanos(System.nanoTime() - sent)).isLessThan(Duration.ofSeconds(2));
        }
      }
    } finally {
      TestPostgres.dropSchema(schema);
    }
  }
}
