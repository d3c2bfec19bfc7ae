package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.nats.client.Connection;
import io.nats.client.JetStreamManagement;
import io.nats.client.Nats;
import io.nats.client.api.MessageInfo;
import java.net.URI;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import org.civicsync.server.nats.NatsSettings;
import org.civicsync.testing.NatsTestServer;
import org.junit.jupiter.api.Test;

/**
 * Domain events on a real NATS JetStream: every change the server applies appears in the stream
 * exactly once, in order per tenant, also when NATS is stopped and started again in the middle of
 * the work (the outbox holds the events meanwhile and the relay catches up).
 */
class DomainEventsTest {
  private static final String ADMIN = "csa_domain-events-test-admin-token-0000000000";

  @Test
  void everyAppliedChangeIsInTheStreamOnceAlsoWhenNatsRestartsDuringTheWork() throws Exception {
    try (NatsTestServer nats = NatsTestServer.launch()) {
      NatsSettings d = NatsSettings.defaults(nats.url());
      NatsSettings settings = new NatsSettings(nats.url(), "CIVICSYNC_TEST", d.subjects(), d.maxAge(), d.duplicateWindow(), 1,
          Duration.ofSeconds(2));
      ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0).withDemo(true)
          .withDataDir(Files.createTempDirectory("civicsync-events")).withAdminToken(Optional.of(ADMIN)).withNats(Optional.of(settings));
      try (CivicSyncServer server = CivicSyncServer.start(config)) {
        CivicSyncClient device = CivicSyncClient.builder().store(new InMemoryLocalStore())
            .transport(new UrlConnectionTransport(URI.create("http://127.0.0.1:" + server.port()))).random(new Random(7)).build();
        device.enroll(server.demoEnrollmentCode().orElseThrow().code(), "events tablet");
        Map<UUID, Integer> versions = new HashMap<>();
        for (int round = 0; round < 6; round++) {
          if (round == 2) {
            nats.stop(); // the broker goes away while devices keep syncing
          }
          if (round == 4) {
            nats.start();
          }
          List<UUID> made = new java.util.ArrayList<>();
          for (int i = 0; i < 20; i++) {
            int n = round * 20 + i;
            UUID id = device.collection("appointments").create(Json.mapper().createObjectNode().put("patientName", "Patient " + n)
                .put("clinicId", "clinic-badulla-03").put("slotStart", String.format("2027-01-%02dT%02d:%02d:00+05:30", 1 + n / 60, 8, n % 60)));
            made.add(id);
            versions.put(id, 1);
          }
          assertThat(device.sync().status().pending()).isZero();
          // Check-ins after the bookings went out: changes of their own (not folded into the create).
          for (int i = 0; i < made.size(); i += 4) {
            device.collection("appointments").update(made.get(i), Json.mapper().createObjectNode().put("status", "checked_in"));
            versions.put(made.get(i), 2);
          }
          assertThat(device.sync().status().pending()).isZero();
        }
        int expected = versions.values().stream().mapToInt(Integer::intValue).sum();
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (server.relay().orElseThrow().published() < expected && System.nanoTime() < deadline) {
          Thread.sleep(50);
        }
        assertThat(server.relay().orElseThrow().failures()).as("NATS was down for a while").isPositive();
        device.close();

        try (Connection conn = Nats.connect(nats.url())) {
          JetStreamManagement jsm = conn.jetStreamManagement();
          long count = jsm.getStreamInfo("CIVICSYNC_TEST").getStreamState().getMsgCount();
          assertThat(count).as("each change once").isEqualTo(expected);
          Set<String> ids = new HashSet<>();
          Map<UUID, Integer> seen = new HashMap<>();
          long lastSeq = 0;
          for (long s = 1; s <= count; s++) {
            MessageInfo m = jsm.getMessage("CIVICSYNC_TEST", s);
            JsonNode e = Json.mapper().readTree(m.getData());
            assertThat(ids.add(m.getHeaders().getFirst("Nats-Msg-Id"))).isTrue();
            assertThat(e.get("eventId").asText()).isEqualTo(m.getHeaders().getFirst("Nats-Msg-Id"));
            assertThat(m.getSubject()).isEqualTo("civicsync.demo.appointments." + e.get("op").asText());
            assertThat(e.get("seq").asLong()).as("in commit order").isGreaterThan(lastSeq);
            lastSeq = e.get("seq").asLong();
            seen.merge(UUID.fromString(e.get("recordId").asText()), 1, Integer::sum);
          }
          assertThat(seen).isEqualTo(versions);
        }
      }
    }
  }
}
