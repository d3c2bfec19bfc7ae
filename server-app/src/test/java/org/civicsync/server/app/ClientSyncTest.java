package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.ClientException;
import org.civicsync.client.LocalCollection;
import org.civicsync.client.Listeners;
import org.civicsync.client.SyncEvent;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.Transport;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.core.json.Json;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.link.FaultyLink;
import org.civicsync.testing.link.LinkProfile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The Java SDK against a real server, through a link that loses, duplicates and cuts requests. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClientSyncTest {
  private static final String ADMIN = "csa_client-sync-test-admin-token-00000000000";

  private CivicSyncServer server;
  private HttpClient http;
  private String base;
  private String tenant;
  private int n;

  @BeforeAll
  void start() throws Exception {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-client-sync")).withAdminToken(Optional.of(ADMIN))
        .withSecurity(new ServerConfig.Security(Duration.ofHours(24), 1_000_000, List.of()));
    server = CivicSyncServer.start(config);
    base = "http://127.0.0.1:" + server.port();
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  void stop() {
    server.close();
  }

  @BeforeEach
  void freshTenant() throws Exception {
    tenant = "sdk-" + (++n) + "-" + System.nanoTime();
    admin("POST", "/v1/admin/tenants", "{\"tenantId\":\"" + tenant + "\"}");
    admin("PUT", "/v1/admin/tenants/" + tenant + "/users/clerk", "{\"roles\":[\"admin\"]}");
  }

  private JsonNode admin(String method, String path, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(base + path)).header("Authorization", "Bearer " + ADMIN)
        .header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).as(r.body()).isBetween(200, 201);
    return Json.mapper().readTree(r.body());
  }

  private String code() throws Exception {
    return admin("POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", "{\"userId\":\"clerk\"}").get("code").asText();
  }

  /** A transport that can be pointed elsewhere (or nowhere) while the client runs. */
  private static final class Switch implements Transport {
    final AtomicReference<Transport> to = new AtomicReference<>();

    Switch(Transport t) {
      to.set(t);
    }

    @Override
    public Response send(Request request) throws IOException {
      return to.get().send(request);
    }
  }

  private static Transport nowhere() {
    return r -> {
      throw new java.net.ConnectException("offline");
    };
  }

  private CivicSyncClient client(Transport t, long seed) throws Exception {
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(t).random(new Random(seed)).batchSize(50).build();
    c.enroll(code(), "tablet " + seed);
    return c;
  }

  /** Syncs until nothing is pending, riding out the link's faults; returns how many attempts failed. */
  private static int syncUntilClean(CivicSyncClient c) throws Exception {
    int failures = 0;
    for (int attempt = 0; attempt < 200; attempt++) {
      try {
        CivicSyncClient.SyncReport r = c.sync();
        if (r.status().pending() == 0) {
          return failures;
        }
      } catch (IOException e) {
        failures++;
      }
    }
    throw new AssertionError("the client did not get its outbox through in 200 attempts: " + c.status());
  }

  private static Map<UUID, ObjectNode> local(CivicSyncClient c) {
    Map<UUID, ObjectNode> out = new HashMap<>();
    c.collection("appointments").all().forEach(e -> out.put(e.getKey(), e.getValue()));
    return out;
  }

  @Test
  void everyWriteReachesTheServerExactlyOnceThroughLostAcksDuplicatesAndResetsAndAllDevicesConverge() throws Exception {
    long seed = 20261122L;
    LinkProfile faults = LinkProfile.PERFECT.withLostAck(0.15).withDuplicateRequest(0.15).withResetMidRequest(0.1)
        .withDelayResponse(0.1, Duration.ofMillis(50));
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", server.port()), LinkProfile.PERFECT, seed)) {
      List<CivicSyncClient> clients = new ArrayList<>();
      for (int i = 0; i < 3; i++) {
        clients.add(client(new UrlConnectionTransport(link.uri()), seed + i));
      }
      link.setProfile(faults);
      Random rnd = new Random(seed);
      Fixtures fx = new Fixtures(seed);
      Map<UUID, Integer> notesAdded = new HashMap<>();
      java.util.Set<UUID> sent = new java.util.HashSet<>();
      int creates = 0;
      for (int round = 0; round < 6; round++) {
        for (CivicSyncClient c : clients) {
          LocalCollection appts = c.collection("appointments");
          for (int k = 0; k < 4; k++) {
            appts.create(fx.appointment());
            creates++;
          }
          List<Map.Entry<UUID, ObjectNode>> mine = appts.all();
          Map.Entry<UUID, ObjectNode> pick = mine.get(rnd.nextInt(mine.size()));
          ObjectNode patch = Json.mapper().createObjectNode();
          patch.set("notes", pick.getValue().get("notes").deepCopy());
          ((com.fasterxml.jackson.databind.node.ArrayNode) patch.get("notes")).add("round " + round + " by " + c.hashCode());
          appts.update(pick.getKey(), patch);
          notesAdded.merge(pick.getKey(), 1, Integer::sum);
        }
        for (CivicSyncClient c : clients) {
          c.outbox().forEach(e -> sent.add(e.mutationId()));
          syncUntilClean(c);
        }
      }
      assertThat(link.stats().totalFaults()).as("the link injected faults (%s)", link).isPositive();
      link.setProfile(LinkProfile.PERFECT);
      for (CivicSyncClient c : clients) {
        syncUntilClean(c);
      }
      Map<UUID, ObjectNode> reference = local(clients.get(0));
      assertThat(reference).as("no record lost, none doubled (seed %s)", seed).hasSize(creates);
      for (CivicSyncClient c : clients) {
        assertThat(local(c)).as("every device converged with the others (seed %s)", seed).isEqualTo(reference);
        assertThat(c.status().pending()).isZero();
        assertThat(c.status().rejected()).isZero();
        c.close();
      }
      CivicSyncClient fresh = client(new UrlConnectionTransport(URI.create(base)), 99);
      syncUntilClean(fresh);
      assertThat(local(fresh)).as("what a new device downloads is what the others hold").isEqualTo(reference);
      JsonNode verify = admin("GET", "/v1/admin/audit/verify?tenant=" + tenant, "");
      assertThat(verify.get("ok").asBoolean()).isTrue();
      assertThat(verify.get("logEntries").asLong()).as("one log entry per mutation the devices made, however often it was delivered")
          .isEqualTo(sent.size());
      assertThat(sent.size()).as("edits of unsent records were folded, the others sent on their own")
          .isBetween(creates, creates + notesAdded.values().stream().mapToInt(Integer::intValue).sum());
    }
  }

  @Test
  void aDeviceOfflineForThreeDaysSyncsItsWorkInOneBatchAndShowsNothingPending() throws Exception {
    Switch sw = new Switch(new UrlConnectionTransport(URI.create(base)));
    // The device's clock: three days ago, when it went offline; it advances as the work is done.
    org.civicsync.testing.FakeClock clock = new org.civicsync.testing.FakeClock(java.time.Instant.now().minus(Duration.ofDays(3)));
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(sw).clock(clock).random(new Random(1)).build();
    c.enroll(code(), "tablet");
    c.sync();
    sw.to.set(nowhere());
    Fixtures fx = new Fixtures(2);
    LocalCollection appts = c.collection("appointments");
    List<UUID> ids = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      ids.add(appts.create(fx.appointment()));
      clock.advance(Duration.ofHours(4));
      if (i % 3 == 0) {
        assertThatThrownBy(c::sync).as("still offline").isInstanceOf(IOException.class);
      }
    }
    for (int i = 1; i <= 5; i++) {
      appts.update(ids.get(0), Fixtures.patch("patientPhone", "+9477000000" + i));
      clock.advance(Duration.ofHours(5));
    }
    assertThatThrownBy(c::sync).isInstanceOf(IOException.class);
    assertThat(c.status().pending()).isEqualTo(10);
    assertThat(c.status().online()).isFalse();
    assertThat(c.outbox()).as("five edits of an unsent record fold into its create").hasSize(10);
    sw.to.set(new UrlConnectionTransport(URI.create(base)));
    CivicSyncClient.SyncReport r = c.sync();
    assertThat(r.pushed()).isEqualTo(10);
    assertThat(c.status().wireBytes()).isPositive();
    assertThat(r.status().pending()).isZero();
    assertThat(r.status().lastSyncAt()).isPresent();
    CivicSyncClient other = client(new UrlConnectionTransport(URI.create(base)), 3);
    other.sync();
    assertThat(other.collection("appointments").get(ids.get(0)).orElseThrow().get("patientPhone").asText()).isEqualTo("+94770000005");
  }

  @Test
  void aPushCutOffByTheLinkIsResumedWithoutSendingAgainWhatHadArrived() throws Exception {
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", server.port()), LinkProfile.PERFECT, 11)) {
      // The same amount of work pushed whole, for the size of one push on the wire.
      CivicSyncClient control = client(new UrlConnectionTransport(link.uri()), 40);
      control.sync();
      Fixtures fx = new Fixtures(40);
      for (int i = 0; i < 50; i++) {
        control.collection("appointments").create(fx.appointment());
      }
      long before = link.stats().bytesUp();
      control.sync();
      long whole = link.stats().bytesUp() - before;

      CivicSyncClient c = client(new UrlConnectionTransport(link.uri()), 41);
      c.sync();
      fx = new Fixtures(41);
      for (int i = 0; i < 50; i++) {
        c.collection("appointments").create(fx.appointment());
      }
      // A slow link with some delay, as a device's would be: the question of how much arrived
      // crosses it after the server has seen the broken body, and it pays to ask.
      LinkProfile slow = LinkProfile.PERFECT.withBandwidth(200_000, 200_000).withLatency(Duration.ofMillis(20));
      Cut cut = cutOffAndResumed(link, slow, c);
      long cutOff = cut.cutOff();
      long resumed = cut.resumed();

      String sizes = "whole push " + whole + " bytes, cut off after " + cutOff + ", resumed with " + resumed + " (" + link + ")";
      assertThat(cutOff).as("the link's seed cuts the push well into its body: %s", sizes).isGreaterThan(whole / 4);
      // The resumed attempt asks how far the server got and sends the rest: about the headers of
      // two more requests above the part that had not arrived.
      assertThat(cutOff + resumed).as(sizes).isLessThan(whole + 1500);
      assertThat(resumed).as(sizes).isLessThan(whole - cutOff + 1500);
      CivicSyncClient other = client(new UrlConnectionTransport(URI.create(base)), 42);
      other.sync();
      assertThat(other.collection("appointments").all()).as("every change arrived once").hasSize(100);
    }
  }

  /** Bytes up of a sync cut off mid-push by the link, and of the sync after it that finishes. */
  private record Cut(long cutOff, long resumed) {}

  private static Cut cutOffAndResumed(FaultyLink link, LinkProfile slow, CivicSyncClient c) throws Exception {
    link.setProfile(slow.withResetMidRequest(1.0));
    long before = link.stats().bytesUp();
    assertThatThrownBy(c::sync).as("the push is cut off").isInstanceOf(IOException.class);
    long cutOff = link.stats().bytesUp() - before;
    link.setProfile(slow);
    before = link.stats().bytesUp();
    assertThat(c.sync().status().pending()).isZero();
    return new Cut(cutOff, link.stats().bytesUp() - before);
  }

  /** How many requests the server has answered with this method, route and status, from its metrics. */
  private double answered(String method, String route, int status) throws Exception {
    String text = http.send(HttpRequest.newBuilder(URI.create(base + "/metrics")).build(), HttpResponse.BodyHandlers.ofString()).body();
    String series = "civicsync_http_requests_seconds_count{method=\"" + method + "\",route=\"" + route + "\",status=\"" + status + "\"";
    return text.lines().filter(l -> l.startsWith(series)).mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  @Test
  void aPushCutOffByTheLinkIsResumedWhereTheDeviceReckonsItStoppedWithoutAskingTheServer() throws Exception {
    // A slow link (8 kB/s, 50 ms one way), slow enough that a scheduling hiccup of the test's
    // machine is small beside the margin the reckoning leaves.
    LinkProfile slow = LinkProfile.PERFECT.withBandwidth(64_000, 64_000).withLatency(Duration.ofMillis(50));
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", server.port()), slow, 12)) {
      CivicSyncClient c = client(new UrlConnectionTransport(link.uri()), 43);
      c.sync();
      Fixtures fx = new Fixtures(43);
      // Three pushes first: the answers tell the device the link's rate and round trip.
      for (int i = 0; i < 150; i++) {
        c.collection("appointments").create(fx.appointment());
      }
      long before = link.stats().bytesUp();
      assertThat(c.sync().pushed()).isEqualTo(150);
      long whole = (link.stats().bytesUp() - before) / 3;
      for (int i = 0; i < 50; i++) {
        c.collection("appointments").create(fx.appointment());
      }
      double asked = answered("HEAD", "/v1/sync/uploads/{key}", 200);
      double refused = answered("POST", "/v1/sync/push", 409);
      double gone = answered("POST", "/v1/sync/push", 499);
      Cut cut = cutOffAndResumed(link, slow, c);
      long cutOff = cut.cutOff();
      long resumed = cut.resumed();

      String sizes = "a push about " + whole + " bytes, cut off after " + cutOff + ", resumed with " + resumed + " (" + link + ")";
      assertThat(cutOff).as("the link's seed cuts the push well into its body: %s", sizes).isGreaterThan(whole / 4);
      assertThat(answered("HEAD", "/v1/sync/uploads/{key}", 200)).as("no question asked").isEqualTo(asked);
      assertThat(answered("POST", "/v1/sync/push", 409)).as("the reckoning was not past what had arrived: %s", sizes)
          .isEqualTo(refused);
      assertThat(answered("POST", "/v1/sync/push", 499)).as("the broken request, counted as left by its client").isEqualTo(gone + 1);
      // Sent again: a tenth of what had crossed and the margin for the request's head, with the
      // resumed push's own head and the rest of the sync's requests (resending the whole body would
      // cost about the cut-off part again).
      assertThat(cutOff + resumed).as(sizes).isLessThan(whole + cutOff / 5 + 1500);
      CivicSyncClient other = client(new UrlConnectionTransport(URI.create(base)), 44);
      other.sync();
      assertThat(other.collection("appointments").all()).as("every change arrived once").hasSize(200);
    }
  }

  @Test
  void aDeviceAwayLongerThanTheCompactionHorizonDownloadsAgainAndLosesNothingItWrote() throws Exception {
    CivicSyncClient office = client(new UrlConnectionTransport(URI.create(base)), 31);
    Switch sw = new Switch(new UrlConnectionTransport(URI.create(base)));
    CivicSyncClient field = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(sw).random(new Random(32)).build();
    field.enroll(code(), "field tablet");
    Fixtures fx = new Fixtures(33);
    UUID gone = office.collection("appointments").create(fx.appointment());
    UUID kept = office.collection("appointments").create(fx.appointment());
    office.sync();
    field.sync();
    assertThat(field.collection("appointments").get(gone)).isPresent();

    sw.to.set(nowhere()); // the field tablet goes away
    office.collection("appointments").delete(gone);
    office.sync();
    field.collection("appointments").update(kept, Fixtures.patch("patientPhone", "+94770000031"));
    // Three months on, the server compacts the deletion the tablet never heard of.
    org.civicsync.server.compaction.Compactor.Report r = new org.civicsync.server.compaction.Compactor(server.store(),
        new org.civicsync.testing.FakeClock(java.time.Instant.now().plus(Duration.ofDays(90)).plusSeconds(1)), Duration.ofDays(90))
        .compact(tenant);
    assertThat(r.tombstones()).isEqualTo(1);

    sw.to.set(new UrlConnectionTransport(URI.create(base)));
    CivicSyncClient.SyncReport back = field.sync();
    assertThat(back.pushed()).as("its outbox went as usual").isEqualTo(1);
    assertThat(back.status().pending()).isZero();
    assertThat(field.collection("appointments").get(gone)).as("the fresh download dropped the deleted record").isEmpty();
    assertThat(field.collection("appointments").get(kept).orElseThrow().get("patientPhone").asText()).isEqualTo("+94770000031");
    office.sync();
    assertThat(office.collection("appointments").get(kept).orElseThrow().get("patientPhone").asText()).isEqualTo("+94770000031");
    field.close();
    office.close();
  }

  @Test
  void aStartedClientHearsOfAnotherDevicesChangeThroughItsLiveStreamWithoutPolling() throws Exception {
    // Polling once an hour: only the live stream can bring the other device's booking in time.
    CivicSyncClient listener = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(new UrlConnectionTransport(URI.create(base)))
        .random(new Random(21)).schedule(Duration.ofHours(1), Duration.ofMillis(200), Duration.ofSeconds(2)).build();
    listener.enroll(code(), "listening tablet");
    CivicSyncClient writer = client(new UrlConnectionTransport(URI.create(base)), 22);
    try {
      listener.start();
      long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
      while (!listener.status().live() && System.nanoTime() < deadline) {
        Thread.sleep(20);
      }
      assertThat(listener.status().live()).as("the stream opened").isTrue();
      UUID id = writer.collection("appointments").create(new Fixtures(23).appointment());
      writer.sync();
      long sent = System.nanoTime();
      while (listener.collection("appointments").get(id).isEmpty() && System.nanoTime() - sent < Duration.ofSeconds(5).toNanos()) {
        Thread.sleep(20);
      }
      assertThat(listener.collection("appointments").get(id)).as("pulled after the stream's notice").isPresent();
    } finally {
      listener.close();
      writer.close();
    }
  }

  @Test
  void aBookingTheServerRefusesIsRolledBackAndTheUserIsToldWhy() throws Exception {
    CivicSyncClient a = client(new UrlConnectionTransport(URI.create(base)), 10);
    CivicSyncClient b = client(new UrlConnectionTransport(URI.create(base)), 11);
    List<SyncEvent> events = new CopyOnWriteArrayList<>();
    b.addSyncListener(new Listeners.SyncListener() {
      @Override
      public void event(SyncEvent e) {
        events.add(e);
      }
    });
    ObjectNode slot = new Fixtures(12).appointment();
    a.collection("appointments").create(slot.deepCopy());
    UUID mine = b.collection("appointments").create(slot.deepCopy().put("patientName", "Kasun Silva"));
    a.sync();
    b.sync();
    assertThat(b.collection("appointments").get(mine)).as("rolled back").isEmpty();
    assertThat(events).singleElement().isInstanceOfSatisfying(SyncEvent.Rejected.class, e -> {
      assertThat(e.code()).isEqualTo("CAPACITY_EXCEEDED");
      assertThat(e.message()).isNotBlank();
    });
    assertThat(b.status().rejected()).isEqualTo(1);
    assertThat(b.status().pending()).isZero();
    assertThat(b.collection("appointments").all()).as("the other device's booking arrived").hasSize(1);
  }

  @Test
  void anInvalidWriteFailsLocallyWithTheServersCodeAndQueuesNothing() throws Exception {
    CivicSyncClient c = client(new UrlConnectionTransport(URI.create(base)), 20);
    ObjectNode bad = new Fixtures(21).appointment();
    bad.remove("patientName");
    assertThatThrownBy(() -> c.collection("appointments").create(bad)).isInstanceOfSatisfying(ClientException.class,
        e -> assertThat(e.code()).isEqualTo("VALIDATION_FAILED"));
    assertThatThrownBy(() -> c.collection("appointments").update(UUID.randomUUID(), Fixtures.patch("status", "completed")))
        .isInstanceOfSatisfying(ClientException.class, e -> assertThat(e.code()).isEqualTo("RECORD_NOT_FOUND"));
    assertThat(c.outbox()).isEmpty();
  }

  @Test
  void definitionsAreFetchedOnceAndThenAnsweredNotModified() throws Exception {
    List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
    Transport direct = new UrlConnectionTransport(URI.create(base));
    Transport recording = r -> {
      Transport.Response resp = direct.send(r);
      if (r.path().startsWith("/v1/collections")) {
        seen.add(r.headers().getOrDefault("If-None-Match", "-") + " " + resp.status() + " " + resp.body().length);
      }
      return resp;
    };
    CivicSyncClient c = client(recording, 41);
    c.sync();
    UUID id = c.collection("appointments").create(new Fixtures(41).appointment());
    c.sync();
    assertThat(seen).hasSize(2);
    assertThat(seen.get(0)).startsWith("- 200 ");
    assertThat(seen.get(1)).matches("\"[0-9a-f]{32}\" 304 0");
    // The stored definitions still hold: the record was validated against them and went through.
    assertThat(c.status().pending()).isZero();
    assertThat(c.collection("appointments").get(id)).isPresent();
    assertThatThrownBy(() -> c.collection("appointments").create(Fixtures.patch("slotStart", "tomorrow")))
        .isInstanceOfSatisfying(ClientException.class, e -> assertThat(e.code()).isEqualTo("VALIDATION_FAILED"));
  }

  @Test
  void anExpiredTokenIsRenewedByKeyAndChangesMadeOfflineStillApply() throws Exception {
    ServerConfig config = ServerConfig.defaults().withHost("127.0.0.1").withPort(0)
        .withDataDir(Files.createTempDirectory("civicsync-client-ttl")).withAdminToken(Optional.of(ADMIN))
        .withSecurity(new ServerConfig.Security(Duration.ofSeconds(1), 1_000_000, List.of()));
    try (CivicSyncServer shortLived = CivicSyncServer.start(config)) {
      String url = "http://127.0.0.1:" + shortLived.port();
      String t = "ttl";
      for (String[] call : new String[][] {{"POST", "/v1/admin/tenants", "{\"tenantId\":\"ttl\"}"},
          {"PUT", "/v1/admin/tenants/ttl/users/u", "{\"roles\":[\"admin\"]}"}}) {
        http.send(HttpRequest.newBuilder(URI.create(url + call[1])).header("Authorization", "Bearer " + ADMIN)
            .header("Content-Type", "application/json").method(call[0], HttpRequest.BodyPublishers.ofString(call[2])).build(),
            HttpResponse.BodyHandlers.ofString());
      }
      String code = Json.mapper().readTree(http.send(HttpRequest.newBuilder(URI.create(url + "/v1/admin/tenants/" + t + "/enrollment-codes"))
          .header("Authorization", "Bearer " + ADMIN).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString("{\"userId\":\"u\"}")).build(), HttpResponse.BodyHandlers.ofString()).body())
          .get("code").asText();
      CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(new UrlConnectionTransport(URI.create(url)))
          .build();
      c.enroll(code, "tablet");
      UUID id = c.collection("appointments").create(new Fixtures(30).appointment());
      Thread.sleep(1_500);
      assertThat(c.sync().status().pending()).isZero();
      assertThat(c.collection("appointments").get(id)).isPresent();
    }
  }

  @Test
  void backgroundSyncCarriesWritesWithoutTheAppAsking() throws Exception {
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(new UrlConnectionTransport(URI.create(base)))
        .schedule(Duration.ofSeconds(1), Duration.ofMillis(100), Duration.ofSeconds(2)).build();
    c.enroll(code(), "tablet");
    c.start();
    c.collection("appointments").create(new Fixtures(40).appointment());
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (c.status().pending() > 0 && System.nanoTime() < deadline) {
      Thread.sleep(50);
    }
    assertThat(c.status().pending()).isZero();
    c.close();
  }

  @Test
  void whenTheUsersAccessNarrowsTheDeviceDropsItsCopyAndDownloadsWhatItMayStillSee() throws Exception {
    admin("PUT", "/v1/admin/tenants/" + tenant + "/org-units/clinic-1", "{\"name\":\"Clinic 1\"}");
    CivicSyncClient c = client(new UrlConnectionTransport(URI.create(base)), 50);
    LocalCollection appts = c.collection("appointments");
    UUID inClinic1 = appts.create(new Fixtures(51).appointment().put("clinicId", "clinic-1"));
    UUID elsewhere = appts.create(new Fixtures(52).appointment().put("clinicId", "clinic-2"));
    c.sync();
    assertThat(appts.all()).hasSize(2);
    admin("PUT", "/v1/admin/tenants/" + tenant + "/users/clerk", "{\"roles\":[\"fieldWorker\"],\"orgUnits\":[\"clinic-1\"]}");
    c.sync();
    assertThat(appts.get(inClinic1)).isPresent();
    assertThat(appts.get(elsewhere)).as("no longer the user's to see").isEmpty();
    assertThat(c.status().pending()).isZero();
  }
}
