package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.Schemas;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.core.validation.SchemaChecker;
import org.civicsync.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Identity, roles, scopes, audit and hardening over real HTTP. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class IdentityHttpTest {
  private static final String ADMIN = "csa_identity-test-admin-token-0000000000000";
  private static final String ORIGIN = "https://clinic.example.org";

  private CivicSyncServer server;
  private HttpClient http;
  private String base;
  private String tenant;
  private Fixtures fx;
  private int n;

  /** An enrolled device: its token (which renewal replaces), id and keys. */
  private static final class Dev {
    String token;
    final UUID id;
    final Ed25519.KeyPair keys;
    final String tenant;

    Dev(String token, UUID id, Ed25519.KeyPair keys, String tenant) {
      this.token = token;
      this.id = id;
      this.keys = keys;
      this.tenant = tenant;
    }
  }

  @BeforeAll
  void start() throws Exception {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-identity-test")).withAdminToken(Optional.of(ADMIN))
        .withSecurity(new ServerConfig.Security(java.time.Duration.ofHours(24), 100_000, List.of(ORIGIN)));
    server = CivicSyncServer.start(config);
    base = "http://127.0.0.1:" + server.port();
    http = HttpClient.newHttpClient();
  }

  @AfterAll
  void stop() {
    server.close();
  }

  @BeforeEach
  void freshTenant() throws Exception {
    fx = new Fixtures(++n * 7919L);
    tenant = "id-" + n + "-" + System.nanoTime();
    assertThat(send("POST", "/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "\"}").statusCode()).isEqualTo(201);
    orgUnit("country", null);
    orgUnit("district-n", "country");
    orgUnit("clinic-n1", "district-n");
    orgUnit("clinic-s1", "country");
  }

  private void orgUnit(String id, String parent) throws Exception {
    String body = parent == null ? "{\"name\":\"" + id + "\"}" : "{\"name\":\"" + id + "\",\"parent\":\"" + parent + "\"}";
    HttpResponse<String> r = send("PUT", "/v1/admin/tenants/" + tenant + "/org-units/" + id, ADMIN, body);
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
  }

  private Dev device(String user, String roles, String units) throws Exception {
    HttpResponse<String> u = send("PUT", "/v1/admin/tenants/" + tenant + "/users/" + user, ADMIN,
        "{\"roles\":" + roles + ",\"orgUnits\":" + units + "}");
    assertThat(u.statusCode()).as(u.body()).isEqualTo(200);
    String code = json(send("POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"" + user + "\"}"))
        .get("code").asText();
    Ed25519.KeyPair keys = Ed25519.generate();
    JsonNode e = json(send("POST", "/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"tab\",\"publicKey\":\""
        + keys.publicKey().encoded() + "\"}"));
    assertThat(e.get("userId").asText()).isEqualTo(user);
    return new Dev(e.get("token").asText(), UUID.fromString(e.get("deviceId").asText()), keys, tenant);
  }

  private String push(Dev d, Mutation... ms) {
    ObjectNode body = Json.mapper().createObjectNode();
    ArrayNode arr = body.putArray("mutations");
    for (Mutation m : ms) {
      arr.add(Json.mapper().<JsonNode>valueToTree(Envelopes.sign(m, d.tenant, d.id, d.keys.privateKey())));
    }
    return body.toString();
  }

  private Mutation booking(String clinic) {
    return fx.create(fx.uuid(), fx.appointment().put("clinicId", clinic));
  }

  @Test
  void usersAndOrgUnitsAreManagedAndBadReferencesAreRefused() throws Exception {
    HttpResponse<String> created = send("POST", "/v1/admin/tenants/" + tenant + "/users", ADMIN,
        "{\"userId\":\"nimali\",\"roles\":[\"fieldWorker\"],\"orgUnits\":[\"clinic-n1\"]}");
    assertThat(created.statusCode()).isEqualTo(201);
    assertValid("user.schema.json", json(created));
    assertError(send("POST", "/v1/admin/tenants/" + tenant + "/users", ADMIN, "{\"userId\":\"nimali\",\"roles\":[]}"), 409, "USER_EXISTS");
    assertError(send("PUT", "/v1/admin/tenants/" + tenant + "/users/kasun", ADMIN, "{\"roles\":[\"fieldWorker\"],\"orgUnits\":[\"atlantis\"]}"),
        422, "ORG_UNIT_UNKNOWN");
    assertError(send("PUT", "/v1/admin/tenants/" + tenant + "/users/kasun", ADMIN, "{\"roles\":[\"king\"]}"), 400, "INVALID_REQUEST");
    assertError(send("PUT", "/v1/admin/tenants/" + tenant + "/org-units/country", ADMIN, "{\"name\":\"c\",\"parent\":\"clinic-n1\"}"),
        409, "ORG_UNIT_CYCLE");
    assertError(send("PUT", "/v1/admin/tenants/" + tenant + "/org-units/x", ADMIN, "{\"name\":\"x\",\"parent\":\"nowhere\"}"),
        422, "ORG_UNIT_UNKNOWN");
    JsonNode users = json(send("GET", "/v1/admin/tenants/" + tenant + "/users", ADMIN, null));
    assertValid("users-response.schema.json", users);
    assertThat(users.get("users").findValuesAsText("userId")).containsExactly("nimali");
    JsonNode units = json(send("GET", "/v1/admin/tenants/" + tenant + "/org-units", ADMIN, null));
    assertValid("org-units-response.schema.json", units);
    assertThat(units.get("orgUnits")).hasSize(4);
    Dev d = device("nimali", "[\"fieldWorker\"]", "[\"clinic-n1\"]");
    assertError(send("GET", "/v1/admin/tenants/" + tenant + "/users", d.token, null), 403, "FORBIDDEN");
    JsonNode devices = json(send("GET", "/v1/admin/tenants/" + tenant + "/devices", ADMIN, null));
    assertValid("devices-response.schema.json", devices);
    assertThat(devices.toString()).doesNotContain(d.token);
  }

  @Test
  void aRenewedTokenReplacesTheOldOneAndARevokedDeviceIsShutOut() throws Exception {
    Dev d = device("nurse", "[\"fieldWorker\"]", "[\"district-n\"]");
    Mutation offline = booking("clinic-n1");
    JsonNode ch = json(send("POST", "/v1/devices/challenge", null, "{\"deviceId\":\"" + d.id + "\"}"));
    assertValid("challenge.schema.json", ch);
    String sig = d.keys.privateKey().sign(Envelopes.tokenSigningInput(tenant, d.id, ch.get("challenge").asText()));
    assertError(send("POST", "/v1/devices/token", null, "{\"deviceId\":\"" + d.id + "\",\"challenge\":\"" + ch.get("challenge").asText()
        + "\",\"signature\":\"" + Ed25519.generate().privateKey().sign(new byte[] {1}) + "\"}"), 401, "CHALLENGE_INVALID");
    JsonNode ch2 = json(send("POST", "/v1/devices/challenge", null, "{\"deviceId\":\"" + d.id + "\"}"));
    String sig2 = d.keys.privateKey().sign(Envelopes.tokenSigningInput(tenant, d.id, ch2.get("challenge").asText()));
    HttpResponse<String> renewed = send("POST", "/v1/devices/token", null, "{\"deviceId\":\"" + d.id + "\",\"challenge\":\""
        + ch2.get("challenge").asText() + "\",\"signature\":\"" + sig2 + "\"}");
    assertThat(renewed.statusCode()).as(renewed.body()).isEqualTo(200);
    assertValid("token.schema.json", json(renewed));
    String old = d.token;
    d.token = json(renewed).get("token").asText();
    assertError(send("GET", "/v1/sync/status", old, null), 401, "UNAUTHENTICATED");
    assertThat(json(send("POST", "/v1/sync/push", d.token, push(d, offline))).at("/results/0/status").asText()).isEqualTo("applied");
    assertThat(sig).isNotEmpty();

    HttpResponse<String> revoked = send("POST", "/v1/admin/devices/" + d.id + "/revoke", ADMIN, "");
    assertThat(revoked.statusCode()).as(revoked.body()).isEqualTo(200);
    assertValid("device.schema.json", json(revoked));
    assertError(send("POST", "/v1/sync/push", d.token, push(d, booking("clinic-n1"))), 403, "DEVICE_REVOKED");
    assertError(send("POST", "/v1/devices/challenge", null, "{\"deviceId\":\"" + d.id + "\"}"), 403, "DEVICE_REVOKED");
    assertError(send("POST", "/v1/admin/devices/" + UUID.randomUUID() + "/revoke", ADMIN, ""), 404, "DEVICE_NOT_FOUND");
    Dev admin = device("boss", "[\"admin\"]", "[]");
    assertThat(pullAll(admin)).as("what it applied before stays").hasSize(1);
  }

  @Test
  void aDeviceSeesAndWritesOnlyItsScopeAndLearnsWhenAScopeShrinks() throws Exception {
    Dev admin = device("boss", "[\"admin\"]", "[]");
    Mutation north = booking("clinic-n1");
    Mutation south = booking("clinic-s1");
    assertThat(json(send("POST", "/v1/sync/push", admin.token, push(admin, north, south))).get("results").findValuesAsText("status"))
        .containsExactly("applied", "applied");
    Dev worker = device("w", "[\"fieldWorker\"]", "[\"district-n\"]");
    List<JsonNode> seen = pullAll(worker);
    assertThat(seen).extracting(c -> c.get("recordId").asText()).containsExactly(north.recordId().toString());
    JsonNode refused = json(send("POST", "/v1/sync/push", worker.token, push(worker, new Fixtures(99).create(UUID.randomUUID(),
        fx.appointment().put("clinicId", "clinic-s1")))));
    assertThat(refused.at("/results/0/error/code").asText()).isEqualTo("OUT_OF_SCOPE");
    String cursor = lastCursor;
    send("PUT", "/v1/admin/tenants/" + tenant + "/users/w", ADMIN, "{\"roles\":[\"fieldWorker\"],\"orgUnits\":[\"clinic-s1\"]}");
    JsonNode page = json(send("GET", "/v1/sync/pull?cursor=" + cursor, worker.token, null));
    assertValid(Schemas.PULL_RESPONSE, page);
    assertThat(page.get("changes").findValuesAsText("op")).containsExactlyInAnyOrder("remove", "upsert");
  }

  @Test
  void statsTellSupervisorsAndTheAdminHowEachDeviceSyncsButNotFieldWorkers() throws Exception {
    Dev worker = device("w", "[\"fieldWorker\"]", "[\"clinic-n1\"]");
    Mutation first = booking("clinic-n1");
    Mutation sameSlot = fx.create(fx.uuid(), first.data().deepCopy());
    assertThat(json(send("POST", "/v1/sync/push", worker.token, push(worker, first, sameSlot))).get("results").findValuesAsText("status"))
        .containsExactly("applied", "rejected");
    Dev supervisor = device("s", "[\"supervisor\"]", "[\"country\"]");
    server.flushTraffic();

    JsonNode mine = json(send("GET", "/v1/admin/stats", supervisor.token, null));
    assertValid("stats.schema.json", mine);
    JsonNode asAdmin = json(send("GET", "/v1/admin/stats?tenant=" + tenant + "&since=2000-01-01T00:00:00Z", ADMIN, null));
    assertValid("stats.schema.json", asAdmin);
    for (JsonNode s : List.of(mine, asAdmin)) {
      assertThat(s.at("/totals/mutations").asLong()).isEqualTo(2);
      assertThat(s.at("/totals/applied").asLong()).isEqualTo(1);
      assertThat(s.at("/totals/rejected").asLong()).isEqualTo(1);
      assertThat(s.at("/syncSuccessRate").asDouble()).isEqualTo(0.5);
      assertThat(s.at("/rejectionReasons/CAPACITY_EXCEEDED").asLong()).isEqualTo(1);
      assertThat(s.at("/openInboxItems").asLong()).as("the rejection waits for a person").isEqualTo(1);
      JsonNode w = findDevice(s, worker.id);
      assertThat(w.at("/counts/rejected").asLong()).isEqualTo(1);
      assertThat(w.at("/counts/bytesIn").asLong()).as("the push's body").isPositive();
      assertThat(w.at("/counts/bytesOut").asLong()).as("its answer").isPositive();
      assertThat(w.at("/openInboxItems").asLong()).isEqualTo(1);
      assertThat(w.has("lastPushAt")).isTrue();
      assertThat(findDevice(s, supervisor.id).at("/counts/mutations").asLong()).isZero();
    }
    assertThat(json(send("GET", "/v1/admin/stats?tenant=" + tenant + "&since=2999-01-01T00:00:00Z", ADMIN, null))
        .at("/totals/mutations").asLong()).as("nothing received since then").isZero();

    assertError(send("GET", "/v1/admin/stats", worker.token, null), 403, "FORBIDDEN");
    assertError(send("GET", "/v1/admin/stats?tenant=someone-else", supervisor.token, null), 403, "FORBIDDEN");
    assertError(send("GET", "/v1/admin/stats", ADMIN, null), 400, "INVALID_REQUEST", "tenant");
    assertError(send("GET", "/v1/admin/stats?tenant=no-such-tenant", ADMIN, null), 404, "TENANT_NOT_FOUND", "tenant");
    assertError(send("GET", "/v1/admin/stats?since=yesterday", supervisor.token, null), 400, "INVALID_REQUEST", "since");
  }

  private static JsonNode findDevice(JsonNode stats, UUID id) {
    for (JsonNode d : stats.get("devices")) {
      if (d.get("deviceId").asText().equals(id.toString())) {
        return d;
      }
    }
    throw new AssertionError("no device " + id + " in " + stats);
  }

  @Test
  void auditIsVerifiedAndARecordsTrailIsReadByAuditorsOnly() throws Exception {
    Dev worker = device("w", "[\"fieldWorker\"]", "[\"clinic-n1\"]");
    Mutation m = booking("clinic-n1");
    send("POST", "/v1/sync/push", worker.token, push(worker, m));
    Dev auditor = device("a", "[\"auditor\"]", "[]");
    JsonNode v = json(send("GET", "/v1/admin/audit/verify?tenant=" + tenant, ADMIN, null));
    assertValid("audit-verification.schema.json", v);
    assertThat(v.get("ok").asBoolean()).isTrue();
    assertThat(json(send("GET", "/v1/admin/audit/verify", auditor.token, null)).get("ok").asBoolean()).isTrue();
    assertError(send("GET", "/v1/admin/audit/verify", worker.token, null), 403, "FORBIDDEN");
    assertError(send("GET", "/v1/admin/audit/verify", ADMIN, null), 400, "INVALID_REQUEST");
    JsonNode trail = json(send("GET", "/v1/audit/records/appointments/" + m.recordId(), auditor.token, null));
    assertValid("record-trail.schema.json", trail);
    assertThat(trail.at("/entries/0/userId").asText()).isEqualTo("w");
    assertThat(trail.at("/entries/0/deviceId").asText()).isEqualTo(worker.id.toString());
    assertError(send("GET", "/v1/audit/records/appointments/" + m.recordId(), worker.token, null), 403, "FORBIDDEN");
    assertThat(pullAll(auditor)).as("an auditor reads no records").isEmpty();
    String other = tenant;
    freshTenant();
    Dev foreignAuditor = device("a", "[\"auditor\"]", "[]");
    assertError(send("GET", "/v1/audit/records/appointments/" + m.recordId(), foreignAuditor.token, null), 404, "RECORD_NOT_FOUND");
    assertError(send("GET", "/v1/admin/audit/verify?tenant=" + other, foreignAuditor.token, null), 403, "FORBIDDEN");
  }

  @Test
  void adminWritesHonourIdempotencyKeys() throws Exception {
    String body = "{\"userId\":\"k1\",\"roles\":[\"fieldWorker\"]}";
    HttpResponse<String> first = send("POST", "/v1/admin/tenants/" + tenant + "/users", ADMIN, body, "Idempotency-Key", "k-1");
    HttpResponse<String> again = send("POST", "/v1/admin/tenants/" + tenant + "/users", ADMIN, body, "Idempotency-Key", "k-1");
    assertThat(first.statusCode()).isEqualTo(201);
    assertThat(again.statusCode()).as("the first answer, not USER_EXISTS").isEqualTo(201);
    assertThat(json(again)).isEqualTo(json(first));
    assertError(send("POST", "/v1/admin/tenants/" + tenant + "/users", ADMIN, "{\"userId\":\"k2\",\"roles\":[]}", "Idempotency-Key", "k-1"),
        422, "IDEMPOTENCY_KEY_REUSED");
    HttpResponse<String> code1 = send("POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"k1\"}",
        "Idempotency-Key", "c-1");
    HttpResponse<String> code2 = send("POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"k1\"}",
        "Idempotency-Key", "c-1");
    assertThat(json(code2).get("code").asText()).as("one code, not two").isEqualTo(json(code1).get("code").asText());
  }

  @Test
  void responsesCarrySecurityHeadersAndCorsIsLockedToConfiguredOrigins() throws Exception {
    HttpResponse<String> allowed = send("GET", "/v1/collections", ADMIN, null, "Origin", ORIGIN);
    assertThat(allowed.headers().firstValue("Access-Control-Allow-Origin")).contains(ORIGIN);
    assertThat(allowed.headers().firstValue("X-Content-Type-Options")).contains("nosniff");
    assertThat(allowed.headers().firstValue("Content-Security-Policy")).isPresent();
    HttpResponse<String> foreign = send("GET", "/v1/collections", ADMIN, null, "Origin", "https://evil.example");
    assertThat(foreign.headers().firstValue("Access-Control-Allow-Origin")).isEmpty();
    assertThat(send("OPTIONS", "/v1/sync/push", null, null, "Origin", ORIGIN, "Access-Control-Request-Method", "POST").statusCode())
        .isEqualTo(204);
    assertThat(send("OPTIONS", "/v1/sync/push", null, null, "Origin", "https://evil.example").statusCode()).isEqualTo(403);
  }

  @Test
  void deeplyNestedJsonIsRefusedBeforeItIsRead() throws Exception {
    String deep = "{\"tenantId\":" + "[".repeat(5_000) + "]".repeat(5_000) + "}";
    assertError(send("POST", "/v1/admin/tenants", ADMIN, deep), 400, "JSON_LIMITS_EXCEEDED");
    assertError(send("POST", "/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + "x".repeat(1_100_000) + "\"}"), 400, "JSON_LIMITS_EXCEEDED");
  }

  @Test
  void aCallerOverItsRateIsToldWhenToComeBack() throws Exception {
    java.nio.file.Path web = Files.createTempDirectory("civicsync-rate-web");
    Files.writeString(web.resolve("index.html"), "<!doctype html><title>CivicSync</title>");
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-rate-test")).withAdminToken(Optional.of(ADMIN))
        .withSecurity(new ServerConfig.Security(java.time.Duration.ofHours(24), 30, List.of())).withWebDir(Optional.of(web));
    try (CivicSyncServer slow = CivicSyncServer.start(config)) {
      String url = "http://127.0.0.1:" + slow.port();
      HttpResponse<String> last = null;
      for (int i = 0; i < 40; i++) {
        last = http.send(HttpRequest.newBuilder(URI.create(url + "/v1/collections")).header("Authorization", "Bearer " + ADMIN).GET().build(),
            HttpResponse.BodyHandlers.ofString());
        if (last.statusCode() == 429) {
          break;
        }
      }
      assertError(last, 429, "RATE_LIMITED");
      assertThat(last.headers().firstValue("Retry-After")).isPresent();
      assertThat(http.send(HttpRequest.newBuilder(URI.create(url + "/health/live")).GET().build(), HttpResponse.BodyHandlers.ofString())
          .statusCode()).as("health checks are not limited").isEqualTo(200);

      // Without a token, the address's bucket (a tenth of 30): the API's documents are limited...
      HttpResponse<String> doc = null;
      for (int i = 0; i < 10 && (doc == null || doc.statusCode() != 429); i++) {
        doc = http.send(HttpRequest.newBuilder(URI.create(url + "/openapi.yaml")).GET().build(), HttpResponse.BodyHandlers.ofString());
      }
      assertError(doc, 429, "RATE_LIMITED");
      // ...the web app's files, which devices behind one address load together, are not.
      for (int i = 0; i < 40; i++) {
        assertThat(http.send(HttpRequest.newBuilder(URI.create(url + "/")).GET().build(), HttpResponse.BodyHandlers.ofString()).statusCode())
            .as("the web app's page, request %d", i).isEqualTo(200);
      }
    }
  }

  // ------------------------------------------------------------- helpers

  private String lastCursor;

  private List<JsonNode> pullAll(Dev d) throws Exception {
    List<JsonNode> out = new java.util.ArrayList<>();
    String cursor = "";
    while (true) {
      JsonNode page = json(send("GET", "/v1/sync/pull?limit=1000" + (cursor.isEmpty() ? "" : "&cursor=" + cursor), d.token, null));
      page.get("changes").forEach(out::add);
      cursor = page.get("cursor").asText();
      if (!page.get("hasMore").asBoolean()) {
        lastCursor = cursor;
        return out;
      }
    }
  }

  private HttpResponse<String> send(String method, String path, String bearer, String body, String... headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    if (headers.length > 0) {
      b.headers(headers);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode json(HttpResponse<String> r) throws Exception {
    return Json.mapper().readTree(r.body());
  }

  private static void assertError(HttpResponse<String> r, int status, String code) throws Exception {
    assertThat(r.statusCode()).as("status of %s", r.body()).isEqualTo(status);
    JsonNode body = json(r);
    assertValid(Schemas.ERROR_RESPONSE, body);
    assertThat(body.at("/error/code").asText()).isEqualTo(code);
  }

  private static void assertError(HttpResponse<String> r, int status, String code, String field) throws Exception {
    assertError(r, status, code);
    assertThat(json(r).at("/error/field").asText()).isEqualTo(field);
  }

  private static void assertValid(String schema, JsonNode body) {
    assertThat(SchemaChecker.contract(schema).firstViolation(body)).as("%s against %s", body, schema).isEmpty();
  }
}
