package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.link.FaultyLink;
import org.civicsync.testing.link.LinkProfile;
import org.junit.jupiter.api.Test;

/**
 * 20 devices × 500 mutations, many on records they share, through a link that loses answers,
 * duplicates requests and cuts them, while the server process — on PostgreSQL, the production
 * store — is killed three times: nothing is lost, nothing applied twice, and every device ends with
 * what the server holds.
 */
class ManyDevicesUnderFaultsTest {
  private static final int DEVICES = 20;
  private static final int MUTATIONS = 500;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  private JsonNode admin(int port, String method, String path, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
        .header("Authorization", "Bearer " + CrashSafetyTest.ADMIN).header("Content-Type", "application/json")
        .method(method, HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isBetween(200, 201);
    return Json.mapper().readTree(r.body());
  }

  /** Syncs until nothing is pending, for up to three minutes (a killed server takes a while to come back). */
  private static void syncUntilClean(CivicSyncClient c) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
    while (System.nanoTime() < deadline) {
      try {
        if (c.sync().status().pending() == 0) {
          return;
        }
      } catch (IOException e) {
        Thread.sleep(100);
      } catch (org.civicsync.client.transport.ApiError e) {
        if (e.status() < 500) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
    throw new AssertionError("a device could not get its outbox through: " + c.status());
  }

  private static Map<UUID, ObjectNode> view(CivicSyncClient c) {
    Map<UUID, ObjectNode> out = new HashMap<>();
    c.collection("appointments").all().forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Test
  void twentyDevicesFiveHundredMutationsEachThroughFaultsAndThreeServerKillsConverge() throws Exception {
    long seed = Long.getLong("civicsync.manyDevices.seed", new Random().nextLong());
    try {
      run(seed);
    } catch (AssertionError | Exception e) {
      throw new AssertionError("failed with seed " + seed + " (rerun with -Dcivicsync.manyDevices.seed=" + seed + "): " + e.getMessage(), e);
    }
  }

  private void run(long seed) throws Exception {
    Random rnd = new Random(seed);
    Path data = Files.createTempDirectory("many-devices").resolve("data");
    int port = CrashSafetyTest.freePort();
    String schema = org.civicsync.testing.TestPostgres.freshSchema();
    List<String> pg = List.of("--db-url", org.civicsync.testing.TestPostgres.jdbcUrl(), "--db-schema", schema);
    CrashSafetyTest.ServerProcess[] server = {new CrashSafetyTest.ServerProcess(data, port, pg)};
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", port), LinkProfile.PERFECT, seed)) {
      admin(port, "POST", "/v1/admin/tenants", "{\"tenantId\":\"many\"}");
      admin(port, "PUT", "/v1/admin/tenants/many/users/clerk", "{\"roles\":[\"admin\"]}");
      String code = admin(port, "POST", "/v1/admin/tenants/many/enrollment-codes", "{\"userId\":\"clerk\",\"maxUses\":100}")
          .get("code").asText();
      List<CivicSyncClient> devices = new ArrayList<>();
      for (int i = 0; i < DEVICES; i++) {
        CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(new UrlConnectionTransport(link.uri(),
            Duration.ofSeconds(5), Duration.ofSeconds(30))).batchSize(100).random(new Random(seed + i)).build();
        c.enroll(code, "device " + i);
        devices.add(c);
      }
      // Records every device shares.
      Fixtures shared = new Fixtures(seed);
      for (int i = 0; i < 40; i++) {
        devices.get(0).collection("appointments").create(shared.appointment());
      }
      syncUntilClean(devices.get(0));
      for (CivicSyncClient c : devices) {
        syncUntilClean(c);
      }
      link.setProfile(LinkProfile.PERFECT.withLostAck(0.05).withDuplicateRequest(0.05).withResetMidRequest(0.03)
          .withDelayResponse(0.05, Duration.ofMillis(30)));
      Set<UUID> sent = ConcurrentHashMap.newKeySet();
      ExecutorService pool = Executors.newFixedThreadPool(DEVICES);
      List<Future<?>> work = new ArrayList<>();
      for (int d = 0; d < DEVICES; d++) {
        CivicSyncClient c = devices.get(d);
        long deviceSeed = rnd.nextLong();
        work.add(pool.submit(() -> {
          Random r = new Random(deviceSeed);
          Fixtures fx = new Fixtures(deviceSeed);
          for (int done = 0; done < MUTATIONS; ) {
            for (int k = 0; k < 50 && done < MUTATIONS; k++, done++) {
              List<Map.Entry<UUID, ObjectNode>> mine = c.collection("appointments").all();
              if (r.nextInt(10) < 3 || mine.isEmpty()) {
                c.collection("appointments").create(fx.appointment());
              } else {
                Map.Entry<UUID, ObjectNode> pick = mine.get(r.nextInt(mine.size()));
                ObjectNode patch = Json.mapper().createObjectNode();
                if (r.nextBoolean()) {
                  patch.put("patientPhone", "+9477" + (1000000 + r.nextInt(8999999)));
                } else {
                  ArrayNode notes = pick.getValue().has("notes") ? (ArrayNode) pick.getValue().get("notes").deepCopy()
                      : Json.mapper().createArrayNode();
                  notes.add("note " + deviceSeed + "/" + done);
                  patch.set("notes", notes);
                }
                c.collection("appointments").update(pick.getKey(), patch);
              }
            }
            c.outbox().forEach(e -> sent.add(e.mutationId()));
            syncUntilClean(c);
          }
          return null;
        }));
      }
      for (int kill = 0; kill < 3; kill++) {
        Thread.sleep(1_500 + rnd.nextInt(1_500));
        server[0].kill();
        long t0 = System.nanoTime();
        server[0] = new CrashSafetyTest.ServerProcess(data, port, pg);
        System.err.println("server restart " + kill + " took " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms");
      }
      for (Future<?> f : work) {
        f.get(10, TimeUnit.MINUTES);
      }
      pool.shutdown();
      link.setProfile(LinkProfile.PERFECT);
      for (CivicSyncClient c : devices) {
        syncUntilClean(c);
      }
      for (CivicSyncClient c : devices) {
        syncUntilClean(c); // a second round pulls what the others sent last
      }
      CivicSyncClient reader = CivicSyncClient.builder().store(new InMemoryLocalStore())
          .transport(new UrlConnectionTransport(URI.create("http://127.0.0.1:" + port))).build();
      reader.enroll(code, "reader");
      syncUntilClean(reader);
      Map<UUID, ObjectNode> truth = view(reader);
      for (int i = 0; i < DEVICES; i++) {
        assertThat(view(devices.get(i))).as("device %s converged (seed %s)", i, seed).isEqualTo(truth);
        devices.get(i).close();
      }
      JsonNode audit = admin(port, "GET", "/v1/admin/audit/verify?tenant=many", "");
      assertThat(audit.get("ok").asBoolean()).as("%s", audit).isTrue();
      assertThat(audit.get("logEntries").asLong()).as("each mutation in the log exactly once (seed %s)", seed).isEqualTo(sent.size() + 40);
      assertThat(link.stats().totalFaults()).isPositive();
    } finally {
      server[0].close();
      org.civicsync.testing.TestPostgres.dropSchema(schema);
    }
  }
}
