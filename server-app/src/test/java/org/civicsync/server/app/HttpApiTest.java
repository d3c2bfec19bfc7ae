package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.List;
import java.util.Optional;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.Schemas;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.SchemaChecker;
import org.civicsync.core.validation.Violation;
import org.civicsync.testing.Fixtures;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Every endpoint and every error path, over real HTTP against a running server on SQLite. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpApiTest {
  private static final String ADMIN = "csa_test-admin-token-for-http-tests-0123456789";
  private static final long MAX_BODY = 2L * 1024 * 1024;

  private CivicSyncServer server;
  private HttpClient http;
  private String base;
  private Fixtures fx;
  private String tenant;
  private String token;
  private int tenants;

  @BeforeAll
  void start() throws IOException {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-http-test"))
        .withAdminToken(Optional.of(ADMIN)).withMaxBodyBytes(MAX_BODY);
    server = CivicSyncServer.start(config);
    base = "http://127.0.0.1:" + server.port();
    http = HttpClient.newHttpClient();
  }

  @AfterAll
  void stop() {
    server.close();
  }

  @BeforeEach
  void freshTenantAndDevice() throws Exception {
    fx = new Fixtures(++tenants);
    tenant = "http-" + tenants + "-" + System.nanoTime();
    assertThat(post("/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "\"}").statusCode()).isEqualTo(201);
    assertThat(put("/v1/admin/tenants/" + tenant + "/users/clerk", ADMIN, "{\"roles\":[\"admin\"]}").statusCode()).isEqualTo(200);
    token = enroll("clerk");
  }

  /** Enrolls a new device of the user with a fresh key pair; returns its token. */
  private String enroll(String user) throws Exception {
    String code = json(post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"" + user + "\"}")).get("code").asText();
    org.civicsync.core.signing.Ed25519.KeyPair keys = org.civicsync.core.signing.Ed25519.generate();
    HttpResponse<String> enrolled = post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code
        + "\",\"deviceName\":\"tablet\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}");
    assertThat(enrolled.statusCode()).as(enrolled.body()).isEqualTo(201);
    JsonNode e = json(enrolled);
    devices.put(e.get("token").asText(), new Dev(tenant, java.util.UUID.fromString(e.get("deviceId").asText()), keys));
    return e.get("token").asText();
  }

  private record Dev(String tenant, java.util.UUID id, org.civicsync.core.signing.Ed25519.KeyPair keys) {}

  private final java.util.Map<String, Dev> devices = new java.util.concurrent.ConcurrentHashMap<>();

  /** The mutation signed by the device holding {@code bearer}. */
  private Mutation signed(String bearer, Mutation m) {
    Dev d = devices.get(bearer);
    return org.civicsync.core.signing.Envelopes.sign(m, d.tenant(), d.id(), d.keys().privateKey());
  }

  private Mutation signed(Mutation m) {
    return signed(token, m);
  }

  // ------------------------------------------------------------- health, documents

  @Test
  void healthEndpointsAnswerWithoutAToken() throws Exception {
    assertThat(get("/health/live", null).statusCode()).isEqualTo(200);
    HttpResponse<String> ready = get("/health/ready", null);
    assertThat(ready.statusCode()).isEqualTo(200);
    assertThat(json(ready).get("status").asText()).isEqualTo("ready");
  }

  @Test
  void openApiAndContractSchemasAreServed() throws Exception {
    HttpResponse<String> doc = get("/openapi.yaml", null);
    assertThat(doc.statusCode()).isEqualTo(200);
    assertThat(doc.body()).startsWith("openapi: 3.1");
    for (String f : Schemas.ALL) {
      HttpResponse<String> s = get("/schemas/" + f, null);
      assertThat(s.statusCode()).isEqualTo(200);
      assertThat(json(s).get("$id").asText()).endsWith(f);
    }
    assertError(get("/schemas/secrets.json", null), 404, "NOT_FOUND");
  }

  @Test
  void collectionsCarryAnEntityTagAndACurrentCopyIsAnswered304WithoutABody() throws Exception {
    HttpResponse<String> first = get("/v1/collections", token);
    assertThat(first.statusCode()).isEqualTo(200);
    String tag = first.headers().firstValue("ETag").orElseThrow();
    assertThat(tag).matches("\"[0-9a-f]{32}\"");
    assertThat(json(first).get("collections").size()).isPositive();
    for (String current : List.of(tag, "W/" + tag, "\"other\", " + tag, "*")) {
      HttpResponse<String> again = request("GET", "/v1/collections", "Bearer " + token, new byte[0], false, "If-None-Match", current);
      assertThat(again.statusCode()).as(current).isEqualTo(304);
      assertThat(again.body()).isEmpty();
      assertThat(again.headers().firstValue("ETag")).contains(tag);
    }
    HttpResponse<String> stale = request("GET", "/v1/collections", "Bearer " + token, new byte[0], false, "If-None-Match", "\"0123\"");
    assertThat(stale.statusCode()).isEqualTo(200);
    assertThat(stale.body()).isEqualTo(first.body());
    assertError(request("GET", "/v1/collections", null, new byte[0], false, "If-None-Match", tag), 401, "UNAUTHENTICATED");
  }

  @Test
  void unknownRoutesAndWrongMethodsGetCatalogueErrors() throws Exception {
    assertError(get("/v1/nowhere", token), 404, "NOT_FOUND");
    assertError(get("/v1/sync/push", token), 405, "METHOD_NOT_ALLOWED");
  }

  // ------------------------------------------------------------- admin and enrollment

  @Test
  void adminRoutesNeedTheAdminToken() throws Exception {
    assertError(post("/v1/admin/tenants", null, "{\"tenantId\":\"x1\"}"), 401, "UNAUTHENTICATED");
    assertError(post("/v1/admin/tenants", "csa_wrong", "{\"tenantId\":\"x1\"}"), 401, "UNAUTHENTICATED");
    assertError(post("/v1/admin/tenants", token, "{\"tenantId\":\"x1\"}"), 403, "FORBIDDEN");
    assertError(request("POST", "/v1/admin/tenants", "Basic abc", "{\"tenantId\":\"x1\"}".getBytes(StandardCharsets.UTF_8), false), 401, "UNAUTHENTICATED");
  }

  @Test
  void tenantCreationValidatesAndRefusesDuplicates() throws Exception {
    assertError(post("/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "\"}"), 409, "TENANT_EXISTS");
    assertError(post("/v1/admin/tenants", ADMIN, "{\"tenantId\":\"Bad Tenant!\"}"), 400, "INVALID_REQUEST", "/tenantId");
    assertError(post("/v1/admin/tenants", ADMIN, "{\"tenant\":\"x\"}"), 400, "INVALID_REQUEST");
    assertError(post("/v1/admin/tenants", ADMIN, "{\"tenantId\":"), 400, "MALFORMED_JSON");
    HttpResponse<String> created = post("/v1/admin/tenants", ADMIN, "{\"tenantId\":\"" + tenant + "-b\"}");
    assertThat(created.statusCode()).isEqualTo(201);
    assertValid("tenant.schema.json", json(created));
  }

  @Test
  void enrollmentCodesAreIssuedForExistingTenantsWithDefaults() throws Exception {
    assertError(post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, ""), 400, "INVALID_REQUEST");
    assertError(post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"nobody\"}"), 404, "USER_NOT_FOUND", "/userId");
    HttpResponse<String> r = post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"clerk\"}");
    assertThat(r.statusCode()).isEqualTo(201);
    assertValid("enrollment-code.schema.json", json(r));
    assertThat(json(r).get("maxUses").asInt()).isEqualTo(1);
    assertThat(json(r).get("code").asText()).matches("[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}");
    assertError(post("/v1/admin/tenants/no-such-tenant/enrollment-codes", ADMIN, "{\"userId\":\"clerk\"}"), 404, "TENANT_NOT_FOUND");
    assertError(post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"clerk\",\"maxUses\":0}"), 400,
        "INVALID_REQUEST", "/maxUses");
  }

  @Test
  void enrollmentWithABadCodeOrBadBodyIsRefused() throws Exception {
    String key = ",\"publicKey\":\"" + org.civicsync.core.signing.Ed25519.generate().publicKey().encoded() + "\"";
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"AAAA-BBBB-CCCC\",\"deviceName\":\"t\"" + key + "}"), 403, "ENROLLMENT_CODE_INVALID");
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"AAAA-BBBB-CCCC\"" + key + "}"), 400, "INVALID_REQUEST", "/deviceName");
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"A\",\"deviceName\":\"t\",\"publicKey\":\"short\"}"), 400, "INVALID_REQUEST", "/publicKey");
    String code = json(post("/v1/admin/tenants/" + tenant + "/enrollment-codes", ADMIN, "{\"userId\":\"clerk\"}")).get("code").asText();
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"t\"}"), 400, "INVALID_REQUEST");
    HttpResponse<String> ok = post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"t\"" + key + "}");
    assertValid("enroll-response.schema.json", json(ok));
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"t\"" + key + "}"), 403, "ENROLLMENT_CODE_INVALID");
  }

  @Test
  void collectionsAreListedForDevices() throws Exception {
    HttpResponse<String> r = get("/v1/collections", token);
    assertThat(r.statusCode()).isEqualTo(200);
    assertValid("collections-response.schema.json", json(r));
    assertThat(json(r).get("collections").findValuesAsText("name")).contains("appointments", "subsidy_claims");
    assertError(get("/v1/collections", null), 401, "UNAUTHENTICATED");
  }

  // ------------------------------------------------------------- push

  @Test
  void pushAppliesAndAReplayReturnsTheStoredResult() throws Exception {
    String body = pushBody(fx.create(fx.uuid()), fx.create(fx.uuid()));
    HttpResponse<String> first = post("/v1/sync/push", token, body);
    assertThat(first.statusCode()).isEqualTo(200);
    assertValid(Schemas.PUSH_RESPONSE, json(first));
    assertThat(json(first).get("results").findValuesAsText("status")).containsExactly("applied", "applied");
    HttpResponse<String> again = post("/v1/sync/push", token, body);
    assertThat(json(again).get("results").get(0).get("replayed").asBoolean()).isTrue();
    assertThat(pullAll()).hasSize(2);
  }

  @Test
  void pushPreferringMinimalReturnGetsResultsByPositionWithoutIds() throws Exception {
    Mutation a = fx.create(fx.uuid());
    Mutation b = fx.create(fx.uuid());
    String body = pushBody(a, b);
    HttpResponse<String> minimal = request("POST", "/v1/sync/push", "Bearer " + token, body.getBytes(StandardCharsets.UTF_8), true,
        "Prefer", "respond-async, RETURN = minimal; x=1");
    assertThat(minimal.statusCode()).isEqualTo(200);
    assertThat(minimal.headers().firstValue("Preference-Applied")).contains("return=minimal");
    assertValid(Schemas.PUSH_RESPONSE, json(minimal));
    for (JsonNode r : json(minimal).get("results")) {
      assertThat(r.has("mutationId") || r.has("recordId")).as("%s", r).isFalse();
      assertThat(r.get("status").asText()).isEqualTo("applied");
      assertThat(r.get("version").asLong()).isEqualTo(1);
    }
    // Without the preference the same (replayed) answer names every mutation and record.
    HttpResponse<String> full = post("/v1/sync/push", token, body);
    assertThat(full.headers().firstValue("Preference-Applied")).isEmpty();
    assertThat(json(full).get("results").findValuesAsText("mutationId")).containsExactly(a.mutationId().toString(), b.mutationId().toString());
    assertThat(json(full).get("results").findValuesAsText("recordId")).containsExactly(a.recordId().toString(), b.recordId().toString());
    // Outcomes are read by id, never by position: their schema keeps both ids required.
    com.fasterxml.jackson.databind.node.ObjectNode withoutIds = Json.mapper().createObjectNode();
    withoutIds.putArray("outcomes").addObject().put("status", "applied").put("version", 1);
    withoutIds.put("cursor", "1").put("hasMore", false);
    assertThat(SchemaChecker.contract("outcomes-response.schema.json").violations(withoutIds)).isNotEmpty();
  }

  @Test
  void gzipRequestBodiesAreAcceptedAndLargeResponsesAreCompressed() throws Exception {
    Mutation[] ms = new Mutation[200];
    for (int i = 0; i < ms.length; i++) {
      ms[i] = fx.create(fx.uuid());
    }
    HttpResponse<byte[]> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
        .header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip").header("Accept-Encoding", "gzip")
        .POST(HttpRequest.BodyPublishers.ofByteArray(gzip(pushBody(ms).getBytes(StandardCharsets.UTF_8)))).build(),
        HttpResponse.BodyHandlers.ofByteArray());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("Content-Encoding")).contains("gzip");
    JsonNode body = Json.mapper().readTree(new GZIPInputStream(new java.io.ByteArrayInputStream(r.body())));
    assertThat(body.get("results")).hasSize(200);
    assertThat(pullAll()).hasSize(200);
  }

  // ------------------------------------------------------------- resumable uploads

  /** 150 signed creates, gzip'd as a device sends them. */
  private byte[] namedBody() throws IOException {
    Mutation[] ms = new Mutation[150];
    for (int i = 0; i < ms.length; i++) {
      ms[i] = fx.create(fx.uuid());
    }
    return gzip(pushBody(ms).getBytes(StandardCharsets.UTF_8));
  }

  private long uploadOffset(String bearer, String key) throws Exception {
    HttpResponse<String> r = request("HEAD", "/v1/sync/uploads/" + key, "Bearer " + bearer, new byte[0], false);
    assertThat(r.statusCode()).isEqualTo(200);
    return Long.parseLong(r.headers().firstValue("Upload-Offset").orElseThrow());
  }

  /** Starts a named push of {@code body} on a raw connection and sends its first {@code cut} bytes. */
  private void sendPart(java.net.Socket s, byte[] body, String key, int cut) throws IOException {
    s.getOutputStream().write(("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token
        + "\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nUpload-Key: " + key + "\r\nUpload-Length: "
        + body.length + "\r\nContent-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
    s.getOutputStream().write(body, 0, cut);
    s.getOutputStream().flush();
  }

  private HttpResponse<String> resume(byte[] body, String key, int from) throws Exception {
    return request("POST", "/v1/sync/push", "Bearer " + token, java.util.Arrays.copyOfRange(body, from, body.length), true,
        "Content-Encoding", "gzip", "Upload-Key", key, "Upload-Length", Integer.toString(body.length), "Upload-Offset", Integer.toString(from));
  }

  /** How many requests the server has counted with this method, route and status, from its metrics. */
  private double counted(String method, String route, int status) throws Exception {
    String text = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    String series = "civicsync_http_requests_seconds_count{method=\"" + method + "\",route=\"" + route + "\",status=\"" + status + "\"";
    return text.lines().filter(l -> l.startsWith(series)).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  /** The count once it reaches {@code expected}, or after ten seconds (a request is counted as it ends). */
  private double countedSoon(String method, String route, int status, double expected) throws Exception {
    double n = counted(method, route, status);
    for (long until = System.nanoTime() + 10_000_000_000L; n < expected && System.nanoTime() < until; n = counted(method, route, status)) {
      Thread.sleep(20);
    }
    return n;
  }

  @Test
  void aPushCutOffMidBodyIsResumedFromWhatArrivedAndAppliedOnce() throws Exception {
    byte[] body = namedBody();
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);
    int cut = body.length * 3 / 5;
    double gone = counted("POST", "/v1/sync/push", 499);
    double refused = counted("POST", "/v1/sync/push", 409);
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", server.port())) {
      sendPart(s, body, key, cut);
      s.shutdownOutput(); // the link dies with the body short of its length
      s.getInputStream().readAllBytes();
    }
    for (long until = System.nanoTime() + 10_000_000_000L; uploadOffset(token, key) != cut && System.nanoTime() < until; ) {
      Thread.sleep(20); // the server learns of the broken body as it reads it
    }
    assertThat(uploadOffset(token, key)).as("the part that arrived is held").isEqualTo(cut);
    // Counted as a request its client left, not as the 409 written after it to no one.
    assertThat(countedSoon("POST", "/v1/sync/push", 499, gone + 1)).isEqualTo(gone + 1);
    assertThat(counted("POST", "/v1/sync/push", 409)).isEqualTo(refused);
    assertThat(pullAll()).as("nothing of a part is applied").isEmpty();
    assertThat(uploadOffset(enroll("clerk"), key)).as("another device's parts are not this one's").isZero();

    HttpResponse<String> done = resume(body, key, cut);
    assertThat(done.statusCode()).as(done.body()).isEqualTo(200);
    assertThat(json(done).get("results")).hasSize(150).allSatisfy(r -> assertThat(r.get("status").asText()).isEqualTo("applied"));
    assertThat(pullAll()).hasSize(150);

    HttpResponse<String> again = resume(body, key, 0);
    assertThat(again.statusCode()).isEqualTo(200);
    assertThat(json(again).get("results")).hasSize(150);
    assertThat(pullAll()).as("the whole body again changes nothing").hasSize(150);
  }

  @Test
  void aPlainPushWhoseConnectionBreaksMidBodyChangesNothingAndIsCountedAsLeftByItsClient() throws Exception {
    byte[] body = namedBody();
    double gone = counted("POST", "/v1/sync/push", 499);
    double malformed = counted("POST", "/v1/sync/push", 400);
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", server.port())) {
      s.getOutputStream().write(("POST /v1/sync/push HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + token
          + "\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: " + body.length + "\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII));
      s.getOutputStream().write(body, 0, body.length / 2);
      s.getOutputStream().flush();
      s.shutdownOutput();
      s.getInputStream().readAllBytes();
    }
    assertThat(countedSoon("POST", "/v1/sync/push", 499, gone + 1)).isEqualTo(gone + 1);
    assertThat(counted("POST", "/v1/sync/push", 400)).as("not a malformed body: a broken connection").isEqualTo(malformed);
    assertThat(pullAll()).as("nothing of half a body is applied").isEmpty();
  }

  @Test
  void aDeviceWhoseAnswerWasLostResumesAtTheBodysEndAndIsAnsweredWithoutSendingItAgain() throws Exception {
    byte[] body = namedBody();
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);
    HttpResponse<String> first = resume(body, key, 0);
    assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
    assertThat(pullAll()).hasSize(150);
    // The answer is lost on the way back; the device asks how much arrived: all of it.
    assertThat(uploadOffset(token, key)).as("a completed body is kept").isEqualTo(body.length);
    assertThat(uploadOffset(enroll("clerk"), key)).as("for its own device only").isZero();

    HttpResponse<String> answer = resume(body, key, body.length);
    assertThat(answer.statusCode()).as(answer.body()).isEqualTo(200);
    assertThat(json(answer).get("results")).hasSize(150).allSatisfy(r -> {
      assertThat(r.get("status").asText()).isEqualTo("applied");
      assertThat(r.get("replayed").asBoolean()).as("answered as a replay").isTrue();
    });
    assertThat(pullAll()).as("applied once").hasSize(150);

    byte[] next = namedBody();
    String nextKey = org.civicsync.core.canonical.Digests.sha256Base64Url(next);
    assertThat(resume(next, nextKey, 0).statusCode()).isEqualTo(200);
    assertThat(uploadOffset(token, key)).as("the device's next body takes its place").isZero();
    assertThat(uploadOffset(token, nextKey)).isEqualTo(next.length);
  }

  @Test
  void aNamedPushsAnswerSaysHowFastItsBodyArrivedAndHowLongTheServerWorkedOnIt() throws Exception {
    byte[] body = namedBody();
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);
    int quarter = body.length / 4;
    String answer;
    long started;
    long ended;
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", server.port())) {
      sendPart(s, body, key, quarter);
      started = System.nanoTime();
      // The rest in three pieces, 150 ms apart: a slow link, as the server sees one.
      for (int i = 1; i < 4; i++) {
        Thread.sleep(150);
        int end = i == 3 ? body.length : quarter * (i + 1);
        s.getOutputStream().write(body, quarter * i, end - quarter * i);
        s.getOutputStream().flush();
      }
      ended = System.nanoTime();
      s.shutdownOutput();
      answer = new String(s.getInputStream().readAllBytes(), StandardCharsets.ISO_8859_1);
    }
    assertThat(answer).startsWith("HTTP/1.1 200");
    String headers = answer.substring(0, answer.indexOf("\r\n\r\n")).toLowerCase(java.util.Locale.ROOT);
    java.util.regex.Matcher rate = java.util.regex.Pattern.compile("\r\nupload-rate: (\\d+)").matcher(headers);
    assertThat(rate.find()).as(headers).isTrue();
    // Timed from the end of the first read: at most the three later pieces over the time they took.
    double most = (body.length - quarter) * 1e9 / (ended - started - 150_000_000L);
    assertThat(Double.parseDouble(rate.group(1))).as(headers).isPositive().isLessThan(most * 1.5);
    assertThat(headers).containsPattern("\r\nserver-timing: app;dur=\\d+\\.\\d");

    HttpResponse<String> plain = request("POST", "/v1/sync/push", "Bearer " + token, pushBody(fx.create(fx.uuid())).getBytes(
        StandardCharsets.UTF_8), true);
    assertThat(plain.statusCode()).isEqualTo(200);
    assertThat(plain.headers().firstValue("Upload-Rate")).as("only named pushes say it").isEmpty();
    assertThat(plain.headers().firstValue("Server-Timing")).isEmpty();
  }

  @Test
  void aPushWhoseConnectionDiedSilentlyIsResumedWhileTheServerStillWaitsOnIt() throws Exception {
    byte[] body = namedBody();
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);
    int cut = body.length / 3;
    try (java.net.Socket s = new java.net.Socket("127.0.0.1", server.port())) {
      sendPart(s, body, key, cut);
      // The connection stays open and silent, as one that died on a mobile network does.
      for (long until = System.nanoTime() + 10_000_000_000L; uploadOffset(token, key) != cut && System.nanoTime() < until; ) {
        Thread.sleep(20);
      }
      assertThat(uploadOffset(token, key)).as("what the waiting request has read so far").isEqualTo(cut);

      HttpResponse<String> done = resume(body, key, cut);
      assertThat(done.statusCode()).as(done.body()).isEqualTo(200);
      assertThat(pullAll()).hasSize(150);
      s.setSoLinger(true, 0); // the old connection's end comes later and changes nothing
    }
    Thread.sleep(200);
    assertThat(uploadOffset(token, key)).as("the resumed, completed body is kept; the old request's end changes nothing")
        .isEqualTo(body.length);
    assertThat(pullAll()).hasSize(150);
  }

  @Test
  void aResumedPushThatDoesNotFitWhatArrivedIsRefusedWithWhereToResumeAndChangesNothing() throws Exception {
    byte[] body = namedBody();
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);

    HttpResponse<String> ahead = resume(body, key, 1000);
    assertError(ahead, 409, "UPLOAD_MISMATCH", "Upload-Offset");
    assertThat(ahead.headers().firstValue("Upload-Offset")).contains("0");

    byte[] other = namedBody();
    HttpResponse<String> wrongKey = request("POST", "/v1/sync/push", "Bearer " + token, other, true, "Content-Encoding", "gzip",
        "Upload-Key", key, "Upload-Length", Integer.toString(other.length));
    assertError(wrongKey, 409, "UPLOAD_MISMATCH", "Upload-Offset");
    assertThat(wrongKey.headers().firstValue("Upload-Offset")).contains("0");
    assertThat(pullAll()).isEmpty();

    assertError(request("POST", "/v1/sync/push", "Bearer " + token, body, true, "Content-Encoding", "gzip", "Upload-Key", "short",
        "Upload-Length", Integer.toString(body.length)), 400, "INVALID_REQUEST", "Upload-Key");
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, body, true, "Content-Encoding", "gzip", "Upload-Key", key),
        400, "INVALID_REQUEST", "Upload-Length");
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, body, true, "Content-Encoding", "gzip", "Upload-Key", key,
        "Upload-Length", Long.toString(MAX_BODY + 1)), 413, "PAYLOAD_TOO_LARGE");
    assertThat(request("HEAD", "/v1/sync/uploads/" + key, null, new byte[0], false).statusCode()).isEqualTo(401);
    assertThat(pullAll()).isEmpty();

    HttpResponse<String> whole = resume(body, key, 0);
    assertThat(whole.statusCode()).as("the same body from the start still goes through").isEqualTo(200);
    assertThat(pullAll()).hasSize(150);
  }

  @Test
  void zstdRequestBodiesAreAcceptedAndTheServerSaysWhichCodingsItTakes() throws Exception {
    Mutation[] ms = new Mutation[200];
    for (int i = 0; i < ms.length; i++) {
      ms[i] = fx.create(fx.uuid());
    }
    byte[] zstd = com.github.luben.zstd.Zstd.compress(pushBody(ms).getBytes(StandardCharsets.UTF_8), 19);
    HttpResponse<String> r = request("POST", "/v1/sync/push", "Bearer " + token, zstd, true, "Content-Encoding", "zstd");
    assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
    assertThat(json(r).get("results")).hasSize(200);
    assertThat(r.headers().firstValue("Accept-Encoding")).contains("zstd, gzip");
    assertThat(get("/v1/collections", token).headers().firstValue("Accept-Encoding")).contains("zstd, gzip");
    assertThat(pullAll()).hasSize(200);

    byte[] corrupt = java.util.Arrays.copyOf(zstd, zstd.length / 2);
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, corrupt, true, "Content-Encoding", "zstd"), 400, "MALFORMED_JSON");
    byte[] bomb = com.github.luben.zstd.Zstd.compress(("{\"mutations\":[" + " ".repeat((int) MAX_BODY + 1) + "]}")
        .getBytes(StandardCharsets.UTF_8), 3);
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, bomb, true, "Content-Encoding", "zstd"), 413, "PAYLOAD_TOO_LARGE");
    // A frame whose window is over the limit: refused before the decoder takes the memory.
    byte[] wide = com.github.luben.zstd.Zstd.compress(new byte[9 << 20], 1);
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, wide, true, "Content-Encoding", "zstd"), 413, "PAYLOAD_TOO_LARGE");
    byte[] twoFrames = java.util.Arrays.copyOf(zstd, zstd.length * 2);
    System.arraycopy(zstd, 0, twoFrames, zstd.length, zstd.length);
    assertError(request("POST", "/v1/sync/push", "Bearer " + token, twoFrames, true, "Content-Encoding", "zstd"), 400, "MALFORMED_JSON");
    HttpResponse<String> br = request("POST", "/v1/sync/push", "Bearer " + token, zstd, true, "Content-Encoding", "br");
    assertError(br, 415, "UNSUPPORTED_MEDIA_TYPE");
    assertThat(br.headers().firstValue("Accept-Encoding")).contains("zstd, gzip");
    assertThat(pullAll()).as("refused bodies change nothing").hasSize(200);
  }

  @Test
  void malformedPushesAreRefusedWholeAndChangeNothing() throws Exception {
    Mutation good = signed(fx.create(fx.uuid()));
    ObjectNode goodJson = Json.mapper().valueToTree(good);
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + goodJson + ","), 400, "MALFORMED_JSON");
    assertError(post("/v1/sync/push", token, "[]"), 400, "INVALID_REQUEST");
    assertError(post("/v1/sync/push", token, "{}"), 400, "INVALID_REQUEST", "/mutations");

    ObjectNode wrongType = goodJson.deepCopy().put("deviceSeq", "seven");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + goodJson + "," + wrongType + "]}"), 400, "INVALID_REQUEST", "/mutations/1/deviceSeq");
    ObjectNode missing = goodJson.deepCopy();
    missing.remove("recordId");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + goodJson + "," + missing + "]}"), 400, "INVALID_REQUEST", "/mutations/1/recordId");
    ObjectNode badOp = goodJson.deepCopy().put("op", "upsert");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + badOp + "]}"), 400, "INVALID_REQUEST", "/mutations/0/op");
    ObjectNode extra = goodJson.deepCopy().put("priority", 1);
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + extra + "]}"), 400, "INVALID_REQUEST");
    ObjectNode badId = goodJson.deepCopy().put("mutationId", "not-a-uuid");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + badId + "]}"), 400, "INVALID_REQUEST", "/mutations/0/mutationId");

    ObjectNode nul = goodJson.deepCopy();
    ((ObjectNode) nul.get("data")).put("patientName", "Nimali\u0000Perera");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + nul + "]}"), 400, "INVALID_REQUEST", "/mutations/0/data/patientName");
    assertError(post("/v1/devices/enroll", null, "{\"enrollmentCode\":\"A\",\"deviceName\":\"t\\u0000\"}"), 400, "INVALID_REQUEST", "/deviceName");

    ObjectNode huge = goodJson.deepCopy();
    String hugeJson = huge.toString().replace("\"patientName\":", "\"patientName\":\"x\",\"visits\":1e400,\"x\":");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + hugeJson + "]}"), 400, "INVALID_REQUEST", "/mutations/0/data/visits");
    String bigInt = huge.toString().replace("\"patientName\":", "\"visits\":9007199254740993,\"patientName\":");
    assertError(post("/v1/sync/push", token, "{\"mutations\":[" + bigInt + "]}"), 400, "INVALID_REQUEST", "/mutations/0/data/visits");

    assertThat(pullAll()).as("no request above applied anything").isEmpty();
    assertThat(json(post("/v1/sync/push", token, "{\"mutations\":[" + goodJson + "]}")).at("/results/0/replayed").isMissingNode())
        .as("nor occupied the mutationId").isTrue();
  }

  @Test
  void tooManyMutationsOrTooLargeABodyIs413() throws Exception {
    ObjectNode one = Json.mapper().valueToTree(fx.delete(fx.uuid(), 1));
    ArrayNode many = Json.mapper().createArrayNode();
    for (int i = 0; i < 5001; i++) {
      many.add(one);
    }
    ObjectNode body = Json.mapper().createObjectNode();
    body.set("mutations", many);
    assertError(post("/v1/sync/push", token, body.toString()), 413, "TOO_MANY_MUTATIONS");
    String huge = "{\"mutations\":[],\"pad\":\"" + "x".repeat((int) MAX_BODY) + "\"}";
    // Expect: 100-continue lets the server refuse by Content-Length before the body is sent;
    // without it the refusal races the upload and the client may only see a reset connection.
    HttpResponse<String> tooLarge = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push")).expectContinue(true)
        .header("Authorization", "Bearer " + token).header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(huge)).build(), HttpResponse.BodyHandlers.ofString());
    assertError(tooLarge, 413, "PAYLOAD_TOO_LARGE");
    byte[] bomb = gzip(huge.getBytes(StandardCharsets.UTF_8));
    assertThat(bomb.length).isLessThan(100_000);
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
        .header("Authorization", "Bearer " + token).header("Content-Type", "application/json").header("Content-Encoding", "gzip")
        .POST(HttpRequest.BodyPublishers.ofByteArray(bomb)).build(), HttpResponse.BodyHandlers.ofString());
    assertError(r, 413, "PAYLOAD_TOO_LARGE");
  }

  @Test
  void unsupportedEncodingsAndMediaTypesAre415() throws Exception {
    HttpResponse<String> br = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
        .header("Authorization", "Bearer " + token).header("Content-Type", "application/json").header("Content-Encoding", "br")
        .POST(HttpRequest.BodyPublishers.ofString("{}")).build(), HttpResponse.BodyHandlers.ofString());
    assertError(br, 415, "UNSUPPORTED_MEDIA_TYPE");
    HttpResponse<String> text = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
        .header("Authorization", "Bearer " + token).header("Content-Type", "text/plain")
        .POST(HttpRequest.BodyPublishers.ofString("{\"mutations\":[]}")).build(), HttpResponse.BodyHandlers.ofString());
    assertError(text, 415, "UNSUPPORTED_MEDIA_TYPE");
    HttpResponse<String> corrupt = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
        .header("Authorization", "Bearer " + token).header("Content-Type", "application/json").header("Content-Encoding", "gzip")
        .POST(HttpRequest.BodyPublishers.ofString("not gzip at all")).build(), HttpResponse.BodyHandlers.ofString());
    assertError(corrupt, 400, "MALFORMED_JSON");
  }

  @Test
  void syncRoutesNeedADeviceToken() throws Exception {
    String body = pushBody(fx.create(fx.uuid()));
    assertError(post("/v1/sync/push", null, body), 401, "UNAUTHENTICATED");
    assertError(post("/v1/sync/push", "csd_forged", body), 401, "UNAUTHENTICATED");
    assertError(post("/v1/sync/push", ADMIN, body), 403, "FORBIDDEN");
    assertError(get("/v1/sync/pull", null), 401, "UNAUTHENTICATED");
    assertError(get("/v1/sync/status", "csd_forged"), 401, "UNAUTHENTICATED");
    assertThat(pullAll()).isEmpty();
  }

  @Test
  void perMutationProblemsComeBackInTheResultsWith200() throws Exception {
    ObjectNode bad = fx.appointment().put("slotStart", "tomorrow");
    HttpResponse<String> r = post("/v1/sync/push", token, pushBody(fx.create(fx.uuid(), bad), fx.create(fx.uuid())));
    assertThat(r.statusCode()).isEqualTo(200);
    assertValid(Schemas.PUSH_RESPONSE, json(r));
    JsonNode results = json(r).get("results");
    assertThat(results.at("/0/status").asText()).isEqualTo("rejected");
    assertThat(results.at("/0/error/code").asText()).isEqualTo("VALIDATION_FAILED");
    assertThat(results.at("/0/error/field").asText()).isEqualTo("/data/slotStart");
    assertThat(results.at("/1/status").asText()).isEqualTo("applied");
  }

  // ------------------------------------------------------------- pull and status

  @Test
  void aCursorOlderThanCompactedDeletionsGets410ResyncRequiredAndTheTrailShowsWhatWasCompacted() throws Exception {
    java.util.UUID gone = fx.uuid();
    java.util.UUID kept = fx.uuid();
    post("/v1/sync/push", token, pushBody(fx.create(gone), fx.create(kept), fx.update(kept, 1, Fixtures.patch("status", "checked_in"))));
    String old = json(get("/v1/sync/pull", token)).get("cursor").asText();
    post("/v1/sync/push", token, pushBody(fx.delete(gone, 1)));
    // As if 90 days had passed: the compactor's clock is ahead, the data as written.
    org.civicsync.server.compaction.Compactor.Report r = new org.civicsync.server.compaction.Compactor(server.store(),
        new org.civicsync.testing.FakeClock(java.time.Instant.now().plus(java.time.Duration.ofDays(90)).plusSeconds(1)),
        java.time.Duration.ofDays(90)).compact(tenant);
    assertThat(r.tombstones()).isEqualTo(1);

    HttpResponse<String> refused = get("/v1/sync/pull?cursor=" + old, token);
    assertError(refused, 410, "RESYNC_REQUIRED", "cursor");
    JsonNode fresh = json(get("/v1/sync/pull", token));
    assertThat(fresh.get("changes")).singleElement().satisfies(c -> assertThat(c.get("recordId").asText()).isEqualTo(kept.toString()));
    HttpResponse<String> resumed = get("/v1/sync/pull?cursor=" + fresh.get("cursor").asText(), token);
    assertThat(json(resumed).get("changes")).isEmpty();

    HttpResponse<String> trail = get("/v1/audit/records/appointments/" + kept, token);
    assertThat(trail.statusCode()).as(trail.body()).isEqualTo(200);
    assertValid("record-trail.schema.json", json(trail));
    JsonNode entries = json(trail).get("entries");
    assertThat(entries.get(0).has("compactedAt")).isTrue();
    assertThat(entries.get(0).has("changes")).as("the create's data went").isFalse();
    assertThat(entries.get(1).has("compactedAt")).as("the current state stays whole").isFalse();
    assertThat(entries.get(1).at("/after/status").asText()).isEqualTo("checked_in");
    HttpResponse<String> verify = get("/v1/admin/audit/verify?tenant=" + tenant, ADMIN);
    assertThat(json(verify).get("ok").asBoolean()).as(verify.body()).isTrue();
    JsonNode again = json(post("/v1/sync/push", token, pushBody(fx.create(gone))));
    assertThat(again.at("/results/0/error/code").asText()).as("a buried id is never created again").isEqualTo("RECORD_EXISTS");
  }

  @Test
  void pullPagesThroughTheFeedAndRefusesBadParameters() throws Exception {
    for (int i = 0; i < 5; i++) {
      post("/v1/sync/push", token, pushBody(fx.create(fx.uuid())));
    }
    HttpResponse<String> page = get("/v1/sync/pull?limit=2", token);
    assertThat(page.statusCode()).isEqualTo(200);
    assertValid(Schemas.PULL_RESPONSE, json(page));
    assertThat(json(page).get("changes")).hasSize(2);
    assertThat(json(page).get("hasMore").asBoolean()).isTrue();
    String cursor = json(page).get("cursor").asText();
    HttpResponse<String> rest = get("/v1/sync/pull?limit=10&cursor=" + cursor, token);
    assertThat(json(rest).get("changes")).hasSize(3);
    assertThat(json(rest).get("hasMore").asBoolean()).isFalse();

    assertError(get("/v1/sync/pull?limit=0", token), 400, "LIMIT_OUT_OF_RANGE", "limit");
    assertError(get("/v1/sync/pull?limit=5001", token), 400, "LIMIT_OUT_OF_RANGE", "limit");
    assertError(get("/v1/sync/pull?limit=abc", token), 400, "LIMIT_OUT_OF_RANGE", "limit");
    assertError(get("/v1/sync/pull?cursor=garbage", token), 400, "CURSOR_INVALID", "cursor");
    assertError(get("/v1/sync/pull?collections=appointments&cursor=" + cursor, token), 400, "CURSOR_INVALID", "cursor");
    assertError(get("/v1/sync/pull?collections=land_parcels", token), 400, "INVALID_REQUEST", "collections");
    assertThat(json(get("/v1/sync/pull?collections=subsidy_claims", token)).get("changes")).isEmpty();
  }

  @Test
  void statusReportsLastPushAndPull() throws Exception {
    JsonNode before = json(get("/v1/sync/status", token));
    assertValid("sync-status.schema.json", before);
    assertThat(before.get("tenantId").asText()).isEqualTo(tenant);
    assertThat(before.has("lastPushAt")).isFalse();
    post("/v1/sync/push", token, pushBody(fx.create(fx.uuid())));
    get("/v1/sync/pull", token);
    JsonNode after = json(get("/v1/sync/status", token));
    assertThat(after.has("lastPushAt")).isTrue();
    assertThat(after.has("lastPullAt")).isTrue();
  }

  @Test
  void devicesOfOneTenantNeverSeeAnothersRecords() throws Exception {
    post("/v1/sync/push", token, pushBody(fx.create(fx.uuid())));
    String mine = token;
    freshTenantAndDevice();
    assertThat(pullAll()).isEmpty();
    token = mine;
    assertThat(pullAll()).hasSize(1);
  }

  @Test
  void devicesRacingOverHttpForTheLastSlotGetExactlyOneBooking() throws Exception {
    int devices = 4;
    List<String> tokens = new java.util.ArrayList<>();
    for (int i = 0; i < devices; i++) {
      tokens.add(enroll("clerk"));
    }
    for (int round = 0; round < 5; round++) {
      ObjectNode slot = fx.appointment();
      List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> sent = new java.util.ArrayList<>();
      for (int i = 0; i < devices; i++) {
        Fixtures own = new Fixtures(round * 100L + i);
        Mutation m = own.create(own.uuid(), slot.deepCopy().put("patientName", "patient " + i));
        sent.add(http.sendAsync(HttpRequest.newBuilder(URI.create(base + "/v1/sync/push"))
            .header("Authorization", "Bearer " + tokens.get(i)).header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(pushBodyFor(tokens.get(i), m))).build(), HttpResponse.BodyHandlers.ofString()));
      }
      int applied = 0;
      for (var f : sent) {
        JsonNode r = json(f.get(60, java.util.concurrent.TimeUnit.SECONDS)).at("/results/0");
        if (r.get("status").asText().equals("applied")) {
          applied++;
        } else {
          assertThat(r.at("/error/code").asText()).isEqualTo("CAPACITY_EXCEEDED");
        }
      }
      assertThat(applied).as("round %s", round).isEqualTo(1);
    }
  }

  // ------------------------------------------------------------- inbox and outcomes

  @Test
  void aParkedConflictIsListedResolvedOnceAndItsOutcomeReachesTheDevice() throws Exception {
    java.util.UUID id = fx.uuid();
    post("/v1/sync/push", token, pushBody(fx.create(id)));
    post("/v1/sync/push", token, pushBody(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001"))));
    JsonNode parked = json(post("/v1/sync/push", token, pushBody(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000002")))));
    String conflictId = parked.at("/results/0/conflictId").asText();
    assertThat(parked.at("/results/0/status").asText()).isEqualTo("conflict");

    HttpResponse<String> list = get("/v1/inbox?status=open&kind=conflict", token);
    assertThat(list.statusCode()).isEqualTo(200);
    assertValid("inbox-response.schema.json", json(list));
    assertThat(json(list).at("/items/0/id").asText()).isEqualTo(conflictId);
    assertThat(json(list).at("/items/0/detail/client/data/patientPhone").asText()).isEqualTo("+94770000002");

    String body = "{\"resolution\":\"takeClient\",\"comment\":\"confirmed by phone\"}";
    HttpResponse<String> resolved = request("POST", "/v1/inbox/" + conflictId + "/resolve", "Bearer " + token,
        body.getBytes(StandardCharsets.UTF_8), true, "Idempotency-Key", "k1");
    assertThat(resolved.statusCode()).isEqualTo(200);
    assertValid("resolve-response.schema.json", json(resolved));
    assertThat(json(resolved).at("/record/version").asLong()).isEqualTo(3);
    HttpResponse<String> again = request("POST", "/v1/inbox/" + conflictId + "/resolve", "Bearer " + token,
        body.getBytes(StandardCharsets.UTF_8), true, "Idempotency-Key", "k1");
    assertThat(json(again)).isEqualTo(json(resolved));
    assertError(post("/v1/inbox/" + conflictId + "/resolve", token, body), 409, "INBOX_ITEM_RESOLVED");

    HttpResponse<String> outcomes = get("/v1/sync/outcomes", token);
    assertValid("outcomes-response.schema.json", json(outcomes));
    assertThat(json(outcomes).at("/outcomes/0/resolution").asText()).isEqualTo("takeClient");
    assertThat(json(outcomes).at("/outcomes/0/record/data/patientPhone").asText()).isEqualTo("+94770000002");
    assertThat(json(get("/v1/sync/outcomes?since=" + json(outcomes).get("cursor").asText(), token)).get("outcomes"))
        .as("since is the cursor's other name").isEmpty();
  }

  @Test
  void inboxRequestsWithBadParametersAreRefused() throws Exception {
    assertError(get("/v1/inbox?status=closed", token), 400, "INVALID_REQUEST", "status");
    assertError(get("/v1/inbox?kind=weird", token), 400, "INVALID_REQUEST", "kind");
    assertError(get("/v1/inbox?limit=0", token), 400, "LIMIT_OUT_OF_RANGE", "limit");
    assertError(get("/v1/inbox", null), 401, "UNAUTHENTICATED");
    assertError(post("/v1/inbox/not-a-uuid/resolve", token, "{\"resolution\":\"keepServer\"}"), 404, "INBOX_ITEM_NOT_FOUND");
    assertError(post("/v1/inbox/" + java.util.UUID.randomUUID() + "/resolve", token, "{\"resolution\":\"keepServer\"}"),
        404, "INBOX_ITEM_NOT_FOUND");
    assertError(post("/v1/inbox/" + java.util.UUID.randomUUID() + "/resolve", token, "{\"resolution\":\"edit\"}"),
        400, "INVALID_REQUEST");
    assertError(post("/v1/inbox/" + java.util.UUID.randomUUID() + "/resolve", token, "{\"resolution\":\"shrug\"}"),
        400, "INVALID_REQUEST", "/resolution");
    assertError(get("/v1/sync/outcomes?cursor=nonsense", token), 400, "CURSOR_INVALID", "cursor");
  }

  // ------------------------------------------------------------- records API

  private String apiClient() throws Exception {
    HttpResponse<String> r = post("/v1/admin/tenants/" + tenant + "/api-clients", ADMIN, "{\"name\":\"district HIS\"}");
    assertThat(r.statusCode()).isEqualTo(201);
    assertValid("api-client-credential.schema.json", json(r));
    return json(r).get("token").asText();
  }

  @Test
  void aBackOfficeSystemReadsAndWritesRecordsWithVersionsAndIdempotency() throws Exception {
    String api = apiClient();
    java.util.UUID id = fx.uuid();
    String path = "/v1/records/appointments/" + id;
    ObjectNode data = fx.appointment();
    HttpResponse<String> created = request("PUT", path, "Bearer " + api, data.toString().getBytes(StandardCharsets.UTF_8), true,
        "If-None-Match", "*");
    assertThat(created.statusCode()).isEqualTo(201);
    assertThat(created.headers().firstValue("ETag")).contains("\"1\"");
    HttpResponse<String> got = get(path, api);
    assertThat(got.statusCode()).isEqualTo(200);
    assertThat(got.headers().firstValue("ETag")).contains("\"1\"");
    assertValid("server-record.schema.json", json(got));

    byte[] patch = "{\"status\":\"checked_in\"}".getBytes(StandardCharsets.UTF_8);
    assertError(request("PATCH", path, "Bearer " + api, patch, true), 428, "PRECONDITION_REQUIRED");
    HttpResponse<String> patched = request("PATCH", path, "Bearer " + api, patch, true, "If-Match", "\"1\"", "Idempotency-Key", "p1");
    assertThat(patched.statusCode()).isEqualTo(200);
    assertThat(json(patched).get("version").asLong()).isEqualTo(2);
    HttpResponse<String> retried = request("PATCH", path, "Bearer " + api, patch, true, "If-Match", "\"1\"", "Idempotency-Key", "p1");
    assertThat(json(retried).get("version").asLong()).as("a retry with its key answers the same, writing nothing").isEqualTo(2);
    assertError(request("PATCH", path, "Bearer " + api, "{\"status\":\"cancelled\"}".getBytes(StandardCharsets.UTF_8), true,
        "If-Match", "\"1\"", "Idempotency-Key", "p1"), 422, "IDEMPOTENCY_KEY_REUSED");
    HttpResponse<String> stale = request("PATCH", path, "Bearer " + api, "{\"patientPhone\":\"+94770000009\"}".getBytes(StandardCharsets.UTF_8),
        true, "If-Match", "\"1\"");
    assertError(stale, 412, "VERSION_MISMATCH");
    assertThat(json(stale).at("/record/version").asLong()).isEqualTo(2);
    assertError(request("PATCH", path, "Bearer " + api, "{\"status\":\"booked\"}".getBytes(StandardCharsets.UTF_8), true,
        "If-Match", "\"2\""), 422, "INVALID_TRANSITION");

    ObjectNode replaced = data.deepCopy().put("status", "completed");
    replaced.remove("patientPhone");
    HttpResponse<String> put = request("PUT", path, "Bearer " + api, replaced.toString().getBytes(StandardCharsets.UTF_8), true,
        "If-Match", "\"2\"");
    assertThat(json(put).at("/data").has("patientPhone")).as("PUT replaces the whole data").isFalse();
    ObjectNode shorter = replaced.deepCopy();
    shorter.remove("notes");
    byte[] shorterBody = shorter.toString().getBytes(StandardCharsets.UTF_8);
    HttpResponse<String> put1 = request("PUT", path, "Bearer " + api, shorterBody, true, "If-Match", "\"3\"", "Idempotency-Key", "r1");
    HttpResponse<String> put2 = request("PUT", path, "Bearer " + api, shorterBody, true, "If-Match", "\"3\"", "Idempotency-Key", "r1");
    assertThat(put2.statusCode()).as("a retried replacement is recognised: %s", put2.body()).isEqualTo(200);
    assertThat(json(put2).get("version")).isEqualTo(json(put1).get("version"));

    assertThat(pullAll()).as("back-office writes flow to devices").singleElement()
        .satisfies(c -> assertThat(c.get("version").asLong()).isEqualTo(4));
    HttpResponse<String> list = get("/v1/records/appointments?clinicId=" + data.get("clinicId").asText() + "&limit=10", api);
    assertValid("records-page.schema.json", json(list));
    assertThat(json(list).get("records")).hasSize(1);

    HttpResponse<String> deleted = request("DELETE", path, "Bearer " + api, new byte[0], false, "If-Match", "\"4\"");
    assertThat(deleted.statusCode()).isEqualTo(200);
    assertError(get(path, api), 404, "RECORD_NOT_FOUND");
  }

  @Test
  void theRecordsApiRefusesDevicesBadInputAndUnknownThings() throws Exception {
    String api = apiClient();
    assertError(get("/v1/records/appointments", token), 403, "FORBIDDEN");
    assertError(post("/v1/sync/push", api, pushBody(fx.create(fx.uuid()))), 403, "FORBIDDEN");
    assertError(get("/v1/records/land_parcels", api), 404, "UNKNOWN_COLLECTION");
    assertError(get("/v1/records/appointments/not-a-uuid", api), 404, "RECORD_NOT_FOUND");
    assertError(get("/v1/records/appointments?noSuchField=1", api), 400, "INVALID_REQUEST");
    assertError(get("/v1/records/appointments?limit=0", api), 400, "LIMIT_OUT_OF_RANGE", "limit");
    String path = "/v1/records/appointments/" + fx.uuid();
    assertError(request("PATCH", path, "Bearer " + api, "{}".getBytes(StandardCharsets.UTF_8), true, "If-Match", "abc"),
        400, "INVALID_REQUEST", "If-Match");
    assertError(request("PATCH", path, "Bearer " + api, "{}".getBytes(StandardCharsets.UTF_8), true, "If-Match", "\"1\""),
        404, "RECORD_NOT_FOUND");
    ObjectNode bad = fx.appointment();
    bad.remove("clinicId");
    assertError(request("PUT", path, "Bearer " + api, bad.toString().getBytes(StandardCharsets.UTF_8), true, "If-None-Match", "*"),
        422, "VALIDATION_FAILED", "/data/clinicId");
    assertError(request("PUT", path, "Bearer " + api, "[1]".getBytes(StandardCharsets.UTF_8), true, "If-None-Match", "*"),
        400, "INVALID_REQUEST");
    assertError(post("/v1/admin/tenants/" + tenant + "/api-clients", ADMIN, "{}"), 400, "INVALID_REQUEST", "/name");
    assertError(post("/v1/admin/tenants/nope/api-clients", ADMIN, "{\"name\":\"x\"}"), 404, "TENANT_NOT_FOUND");
    assertError(post("/v1/admin/tenants/" + tenant + "/api-clients", token, "{\"name\":\"x\"}"), 403, "FORBIDDEN");
  }

  // ------------------------------------------------------------- helpers

  private List<JsonNode> pullAll() throws Exception {
    List<JsonNode> out = new java.util.ArrayList<>();
    String cursor = "";
    while (true) {
      JsonNode page = json(get("/v1/sync/pull?limit=5000" + (cursor.isEmpty() ? "" : "&cursor=" + cursor), token));
      page.get("changes").forEach(out::add);
      cursor = page.get("cursor").asText();
      if (!page.get("hasMore").asBoolean()) {
        return out;
      }
    }
  }

  private String pushBody(Mutation... ms) {
    return pushBodyFor(token, ms);
  }

  /** A push body of these mutations signed by the device holding {@code bearer}. */
  private String pushBodyFor(String bearer, Mutation... ms) {
    ObjectNode body = Json.mapper().createObjectNode();
    ArrayNode arr = body.putArray("mutations");
    for (Mutation m : ms) {
      arr.add(Json.mapper().<JsonNode>valueToTree(devices.containsKey(bearer) ? signed(bearer, m) : m));
    }
    return body.toString();
  }

  private HttpResponse<String> put(String path, String bearer, String body) throws Exception {
    return request("PUT", path, bearer == null ? null : "Bearer " + bearer, body.getBytes(StandardCharsets.UTF_8), true);
  }

  private HttpResponse<String> get(String path, String bearer) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).GET();
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private HttpResponse<String> post(String path, String bearer, String body) throws Exception {
    return request("POST", path, bearer == null ? null : "Bearer " + bearer, body.getBytes(StandardCharsets.UTF_8), true);
  }

  private HttpResponse<String> request(String method, String path, String authorization, byte[] body, boolean json,
      String... headers) throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).method(method, HttpRequest.BodyPublishers.ofByteArray(body));
    if (headers.length > 0) {
      b.headers(headers);
    }
    if (json) {
      b.header("Content-Type", "application/json");
    }
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode json(HttpResponse<String> r) throws IOException {
    return Json.mapper().readTree(r.body());
  }

  private static void assertError(HttpResponse<String> r, int status, String code) throws IOException {
    assertThat(r.statusCode()).as("status of %s", r.body()).isEqualTo(status);
    JsonNode body = json(r);
    assertValid(Schemas.ERROR_RESPONSE, body);
    assertThat(body.at("/error/code").asText()).isEqualTo(code);
    assertThat(body.at("/error/message").asText()).isNotBlank();
  }

  private static void assertError(HttpResponse<String> r, int status, String code, String field) throws IOException {
    assertError(r, status, code);
    assertThat(json(r).at("/error/field").asText()).isEqualTo(field);
  }

  private static void assertValid(String schema, JsonNode body) {
    Optional<Violation> v = SchemaChecker.contract(schema).firstViolation(body);
    assertThat(v).as("%s against %s", body, schema).isEmpty();
  }

  private static byte[] gzip(byte[] raw) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (GZIPOutputStream z = new GZIPOutputStream(out)) {
      z.write(raw);
    }
    return out.toByteArray();
  }
}
