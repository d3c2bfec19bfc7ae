package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.Fixtures;
import org.junit.jupiter.api.Test;

/**
 * Stopping the server lets a push that is being committed finish and answer, refuses what comes
 * after, and loses nothing: after a restart the pushed records are all there.
 */
class GracefulShutdownTest {
  private static final String ADMIN = "csa_graceful-shutdown-test-admin-token-0000000";
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  private HttpResponse<String> send(String base, String method, String path, String bearer, String body) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void aPushInFlightFinishesNewRequestsAreRefusedAndARestartLosesNothing() throws Exception {
    Path data = Files.createTempDirectory("civicsync-graceful");
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDataDir(data).withAdminToken(Optional.of(ADMIN));
    String tenant = "graceful";
    String token;
    UUID deviceId;
    Ed25519.KeyPair keys = Ed25519.generate();
    int n = 3000;
    CivicSyncServer server = CivicSyncServer.start(config);
    String base = "http://127.0.0.1:" + server.port();
    send(base, "POST", "/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "\"}");
    send(base, "PUT", "/v1/admin/tenants/" + tenant + "/users/clerk", ADMIN, "{\"roles\":[\"admin\"]}");
    String code = Json.mapper().readTree(send(base, "POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN,
        "{\"userId\":\"clerk\"}").body()).get("code").asText();
    JsonNode e = Json.mapper().readTree(send(base, "POST", "/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code
        + "\",\"deviceName\":\"t\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}").body());
    token = e.get("token").asText();
    deviceId = UUID.fromString(e.get("deviceId").asText());
    Fixtures fx = new Fixtures(5);
    ObjectNode body = Json.mapper().createObjectNode();
    ArrayNode arr = body.putArray("mutations");
    for (int i = 0; i < n; i++) {
      // Cancelled bookings take no slot: every one of them applies.
      Mutation m = fx.create(fx.uuid(), fx.appointment().put("status", "cancelled"));
      arr.add(Json.mapper().<JsonNode>valueToTree(Envelopes.sign(m, tenant, deviceId, keys.privateKey())));
    }
    String push = body.toString();

    CompletableFuture<HttpResponse<String>> inFlight = CompletableFuture.supplyAsync(() -> {
      try {
        return send(base, "POST", "/v1/sync/push", token, push);
      } catch (Exception ex) {
        throw new IllegalStateException(ex);
      }
    });
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (server.inFlight() == 0 && !inFlight.isDone() && System.nanoTime() < deadline) {
      Thread.sleep(1);
    }
    assertThat(inFlight.isDone()).as("the push was still being handled when the stop began").isFalse();
    CompletableFuture<Void> stopping = CompletableFuture.runAsync(server::close);
    HttpResponse<String> answered = inFlight.get();
    assertThat(answered.statusCode()).as(answered.body()).isEqualTo(200);
    assertThat(Json.mapper().readTree(answered.body()).get("results").findValuesAsText("status")).hasSize(n).containsOnly("applied");
    stopping.get();

    try (CivicSyncServer again = CivicSyncServer.start(config)) {
      String b2 = "http://127.0.0.1:" + again.port();
      int seen = 0;
      String cursor = null;
      boolean more = true;
      while (more) {
        JsonNode page = Json.mapper().readTree(send(b2, "GET", "/v1/sync/pull?limit=1000" + (cursor == null ? "" : "&cursor=" + cursor), token, null).body());
        seen += page.get("changes").size();
        cursor = page.get("cursor").asText();
        more = page.get("hasMore").asBoolean();
      }
      assertThat(seen).as("every record of the push survived the stop").isEqualTo(n);
    }
  }

  @Test
  void aStoppingServerRefusesNewWorkWithUnavailableAndFailsReadiness() throws Exception {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-draining")).withAdminToken(Optional.of(ADMIN));
    CivicSyncServer server = CivicSyncServer.start(config);
    String base = "http://127.0.0.1:" + server.port();
    assertThat(send(base, "GET", "/v1/nowhere", null, null).statusCode()).isEqualTo(404);
    assertThat(send(base, "OPTIONS", "/v1/sync/push", null, null).statusCode()).isEqualTo(403);
    assertThat(send(base, "GET", "/v1/sync/pull", "csd_unknown", null).statusCode()).isEqualTo(401);
    // A request is counted out just after its response left, so the client may be a moment ahead.
    long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
    while (server.inFlight() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertThat(server.inFlight()).as("every finished request is counted out").isZero();
    HttpApi api = server.api();
    assertThat(api.drain(Duration.ofSeconds(1))).isTrue();
    HttpResponse<String> refused = send(base, "GET", "/v1/collections", ADMIN, null);
    assertThat(refused.statusCode()).isEqualTo(503);
    assertThat(refused.body()).contains("UNAVAILABLE");
    assertThat(send(base, "GET", "/health/ready", null, null).statusCode()).isEqualTo(503);
    assertThat(send(base, "GET", "/health/live", null, null).statusCode()).isEqualTo(200);
    server.close();
  }
}
