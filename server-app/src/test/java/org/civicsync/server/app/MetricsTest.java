package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.Optional;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.Test;

/** {@code GET /metrics}: the Prometheus exposition moves with the work and names no one. */
class MetricsTest {
  private final HttpClient http = HttpClient.newHttpClient();

  private String scrape(int port) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/metrics")).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("Content-Type").orElseThrow()).startsWith("text/plain");
    return r.body();
  }

  /** The value of the first sample whose line starts with {@code prefix} (name and labels). */
  private static double value(String exposition, String prefix) {
    Matcher m = Pattern.compile("(?m)^" + Pattern.quote(prefix) + "[^ ]* ([0-9.eE+-]+)$").matcher(exposition);
    return m.find() ? Double.parseDouble(m.group(1)) : Double.NaN;
  }

  @Test
  void metricsCountPushesOutcomesLatencyAndBytesAndNameNoOne() throws Exception {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDemo(true)
        .withDataDir(Files.createTempDirectory("civicsync-metrics")).withAdminToken(Optional.of("csa_metrics-test-admin-token-000000000000000"));
    try (CivicSyncServer server = CivicSyncServer.start(config)) {
      int port = server.port();
      CivicSyncClient device = CivicSyncClient.builder().store(new InMemoryLocalStore())
          .transport(new UrlConnectionTransport(URI.create("http://127.0.0.1:" + port))).random(new Random(3)).build();
      device.enroll(server.demoEnrollmentCode().orElseThrow().code(), "metrics tablet");
      String before = scrape(port);
      for (int i = 0; i < 5; i++) {
        device.collection("appointments").create(Json.mapper().createObjectNode().put("patientName", "Kamala Silva " + i)
            .put("patientPhone", "+94771112233").put("clinicId", "clinic-badulla-03").put("slotStart", "2027-02-01T09:0" + i + ":00+05:30"));
      }
      device.sync();
      // The same slot twice: one rejection by the capacity rule.
      device.collection("appointments").create(Json.mapper().createObjectNode().put("patientName", "Second booking")
          .put("clinicId", "clinic-badulla-03").put("slotStart", "2027-02-01T09:00:00+05:30"));
      device.sync();
      device.close();
      // A request on a connection that closes, so its bytes are counted.
      try (Socket s = new Socket("127.0.0.1", port)) {
        OutputStream out = s.getOutputStream();
        out.write("GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        InputStream in = s.getInputStream();
        in.readAllBytes();
      }
      Thread.sleep(200);
      String after = scrape(port);

      assertThat(value(after, "civicsync_mutations_total{replayed=\"false\",status=\"applied\"")).isEqualTo(5.0);
      assertThat(value(after, "civicsync_mutations_total{replayed=\"false\",status=\"rejected\"")).isEqualTo(1.0);
      assertThat(value(after, "civicsync_push_batch_size_mutations_count")).isEqualTo(2.0);
      assertThat(value(after, "civicsync_http_requests_seconds_count{method=\"POST\",route=\"/v1/sync/push\",status=\"200\"")).isEqualTo(2.0);
      assertThat(after).contains("civicsync_http_requests_seconds_bucket{method=\"GET\",route=\"/v1/sync/pull\"");
      assertThat(value(after, "civicsync_http_request_body_bytes_total")).isGreaterThan(value(before, "civicsync_http_request_body_bytes_total"));
      assertThat(value(after, "civicsync_http_wire_sent_bytes_total")).isPositive();
      // Figures read from the store are refreshed every few seconds, whatever the scrape rate.
      long deadline = System.nanoTime() + java.time.Duration.ofSeconds(15).toNanos();
      while (value(after, "civicsync_inbox_open") != 1.0 && System.nanoTime() < deadline) {
        Thread.sleep(250);
        after = scrape(port);
      }
      assertThat(value(after, "civicsync_inbox_open")).as("the rejection waits for a person").isEqualTo(1.0);
      assertThat(after).contains("civicsync_holds_pending", "civicsync_outbox_pending", "civicsync_streams_open", "jvm_memory_used_bytes");
      assertThat(value(after, "civicsync_store_pool_max")).as("the store's pool").isPositive();
      assertThat(after).contains("civicsync_store_pool_active", "civicsync_store_pool_waiting");
      // Every committed write counts its time waiting for and holding its tenant's lock: at least
      // the two pushes beyond what was counted before them.
      assertThat(value(after, "civicsync_store_write_held_seconds_count") - value(before, "civicsync_store_write_held_seconds_count"))
          .as("writes counted").isGreaterThanOrEqualTo(2.0);
      assertThat(value(after, "civicsync_store_write_held_seconds_sum")).isPositive();
      assertThat(value(after, "civicsync_store_write_wait_seconds_count")).isEqualTo(value(after, "civicsync_store_write_held_seconds_count"));
      assertThat(after).contains("civicsync_store_write_wait_seconds_bucket");
      assertThat(after).as("no personal data in labels").doesNotContain("Kamala", "+9477", "clinic-badulla-03", "demo-nurse");
    }
  }
}
