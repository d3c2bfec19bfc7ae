package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import com.fasterxml.jackson.databind.JsonNode;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.util.List;
import java.util.Optional;
import org.civicsync.core.json.Json;
import org.civicsync.server.app.logging.LogLayout;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/** Logs are JSON lines with the request id every response carries, and name no one. */
class LoggingTest {
  @Test
  void everyResponseCarriesARequestIdAndTheAccessLogNamesRoutesNotPathsOrTokens() throws Exception {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    Logger access = context.getLogger("civicsync.access");
    ListAppender<ILoggingEvent> seen = new ListAppender<>();
    seen.setContext(context);
    seen.start();
    access.addAppender(seen);
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDemo(true)
        .withDataDir(Files.createTempDirectory("civicsync-logging")).withAdminToken(Optional.of("csa_logging-test-admin-token-000000000000000"));
    try (CivicSyncServer server = CivicSyncServer.start(config)) {
      HttpClient http = HttpClient.newHttpClient();
      String base = "http://127.0.0.1:" + server.port();
      HttpResponse<String> given = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sync/pull?access_token=csd_secret-in-query"))
          .header("X-Request-Id", "edge-7f3a.19").header("Authorization", "Bearer csd_not-a-real-token").build(), HttpResponse.BodyHandlers.ofString());
      assertThat(given.statusCode()).isEqualTo(401);
      assertThat(given.headers().firstValue("X-Request-Id")).contains("edge-7f3a.19");
      HttpResponse<String> made = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/inbox/6a1f0c52-8d3b-4e7f-b2a9-5c4d3e2f1a10/resolve"))
          .header("X-Request-Id", "not ok; {\"level\":\"ERROR\"}").POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
      String rid = made.headers().firstValue("X-Request-Id").orElseThrow();
      assertThat(rid).as("an unusable id is replaced").matches("[0-9a-f]{16}");
    } finally {
      access.detachAppender(seen);
    }
    List<ILoggingEvent> lines = seen.list;
    assertThat(lines).anySatisfy(e -> {
      assertThat(e.getFormattedMessage()).startsWith("GET /v1/sync/pull 401");
      assertThat(e.getMDCPropertyMap()).containsEntry("requestId", "edge-7f3a.19");
    });
    assertThat(lines).anySatisfy(e -> assertThat(e.getFormattedMessage()).startsWith("POST /v1/inbox/{id}/resolve"));
    assertThat(lines).allSatisfy(e -> assertThat(e.getFormattedMessage()).doesNotContain("csd_", "6a1f0c52", "access_token"));
  }

  @Test
  void aLogLineIsOneJsonObjectWithTheRequestIdAndTheError() throws Exception {
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    LogLayout layout = new LogLayout();
    layout.setContext(context);
    layout.start();
    ch.qos.logback.classic.spi.LoggingEvent e = new ch.qos.logback.classic.spi.LoggingEvent("x", context.getLogger("civicsync.test"),
        ch.qos.logback.classic.Level.WARN, "store unavailable: {}", new IllegalStateException("connection refused"), new Object[] {"pg"});
    e.setMDCPropertyMap(java.util.Map.of("requestId", "abc123"));
    String line = layout.doLayout(e);
    assertThat(line).endsWith(System.lineSeparator()).doesNotContain("\n{");
    JsonNode json = Json.mapper().readTree(line);
    assertThat(json.get("level").asText()).isEqualTo("WARN");
    assertThat(json.get("logger").asText()).isEqualTo("civicsync.test");
    assertThat(json.get("msg").asText()).isEqualTo("store unavailable: pg");
    assertThat(json.get("requestId").asText()).isEqualTo("abc123");
    assertThat(json.at("/error/type").asText()).isEqualTo("java.lang.IllegalStateException");
    assertThat(json.at("/error/stack").asText()).contains("LoggingTest");
  }
}
