package org.civicsync.server.app;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.RecordQuery;
import org.civicsync.client.transport.ApiError;
import org.civicsync.client.transport.Transport;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.TestPostgres;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Two server processes on one PostgreSQL schema share nothing else: devices that talk to either
 * at random, with the same push sent to both (one after the other, or racing), keep idempotency,
 * per-device order, the hold queue and the gap-free feed, and one instance killed in the middle
 * loses nothing.
 *
 * <p>The randomness is seeded: the seed is printed at the start and named in every failure; rerun
 * with {@code -Dcivicsync.twoInstances.seed=<seed>}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TwoInstancesTest {
  private static final int DEVICES = 8;
  private static final int MUTATIONS = 150;
  private static final int PER_ROUND = 5;
  private static final int SHARED = 20;
  private static final String COLLECTION = "appointments";

  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
  private final long seed = Long.getLong("civicsync.twoInstances.seed", new Random().nextLong());
  private final Path dir;
  private String schema;
  private List<String> pg;
  private final int[] ports = new int[2];
  private final CrashSafetyTest.ServerProcess[] servers = new CrashSafetyTest.ServerProcess[2];

  TwoInstancesTest() throws IOException {
    dir = Files.createTempDirectory("two-instances");
  }

  @BeforeAll
  void startTwoInstancesOnOneDatabase() throws Exception {
    System.out.println("TwoInstancesTest seed " + seed + " (rerun with -Dcivicsync.twoInstances.seed=" + seed + ")");
    schema = TestPostgres.freshSchema();
    pg = List.of("--db-url", TestPostgres.jdbcUrl(), "--db-schema", schema);
    for (int i = 0; i < 2; i++) {
      ports[i] = CrashSafetyTest.freePort();
    }
    // The first creates the schema; the second starts on the schema the first made.
    servers[0] = new CrashSafetyTest.ServerProcess(dir.resolve("a"), ports[0], pg);
    servers[1] = new CrashSafetyTest.ServerProcess(dir.resolve("b"), ports[1], pg);
  }

  @AfterAll
  void stop() throws Exception {
    for (CrashSafetyTest.ServerProcess s : servers) {
      if (s != null) {
        s.close();
      }
    }
    if (schema != null) {
      TestPostgres.dropSchema(schema);
    }
  }

  // ------------------------------------------------------------------ scenario 1

  @Test
  void devicesAlternatingBetweenTwoInstancesWithDuplicateRetriesConvergeExactlyOnce() throws Exception {
    withSeed(this::devicesAlternating);
  }

  private void devicesAlternating() throws Exception {
    Random rnd = new Random(seed);
    String tenant = "two-" + Long.toHexString(seed & 0xffffffL) + "-" + System.nanoTime();
    String code = provision(tenant);
    String api = call(0, "POST", "/v1/admin/tenants/" + tenant + "/api-clients", admin(), "{\"name\":\"back office\"}", OK)
        .get("token").asText();
    Wire wire = new Wire();
    List<CivicSyncClient> devices = new ArrayList<>();
    List<InMemoryLocalStore> stores = new ArrayList<>();
    try {
      for (int i = 0; i < DEVICES; i++) {
        InMemoryLocalStore store = new InMemoryLocalStore();
        CivicSyncClient c = CivicSyncClient.builder().store(store).transport(new TwoWay(transports(), seed + 1 + i, wire))
            .random(new Random(seed + 100 + i)).batchSize(20).pullPageSize(25).build();
        c.enroll(code, "tablet " + i);
        devices.add(c);
        stores.add(store);
      }
      // Records every device shares, made by device 0 and downloaded by all.
      Fixtures sharedFx = new Fixtures(seed);
      Set<UUID> shared = new HashSet<>();
      for (int i = 0; i < SHARED; i++) {
        shared.add(devices.get(0).collection(COLLECTION).create(sharedFx.appointment()));
      }
      for (CivicSyncClient c : devices) {
        syncUntilClean(c);
      }
      // A reader that pulls in small pages through either instance while the devices push.
      Dev reader = enrollRaw(tenant, code, rnd.nextInt(2));
      Watcher watcher = new Watcher(reader.token(), rnd.nextLong(), wire);
      Thread watching = new Thread(watcher, "feed-watcher");
      watching.start();

      AtomicInteger done = new AtomicInteger();
      ExecutorService pool = Executors.newFixedThreadPool(DEVICES);
      List<Future<?>> work = new ArrayList<>();
      for (int d = 0; d < DEVICES; d++) {
        CivicSyncClient c = devices.get(d);
        long deviceSeed = rnd.nextLong();
        work.add(pool.submit(() -> {
          work(c, deviceSeed, shared, done);
          return null;
        }));
      }
      // Instance B dies (SIGKILL) in the middle of the work, whatever it was doing, and comes back.
      long t0 = System.nanoTime();
      long deadline = t0 + TimeUnit.SECONDS.toNanos(60);
      while (done.get() < DEVICES * MUTATIONS / 6 && System.nanoTime() < deadline && work.stream().noneMatch(Future::isDone)) {
        Thread.sleep(20);
      }
      long t1 = System.nanoTime();
      servers[1].kill();
      wire.bUp = false;
      int killedAt = done.get();
      servers[1] = new CrashSafetyTest.ServerProcess(dir.resolve("b"), ports[1], pg);
      wire.bUp = true;
      int backAt = done.get();
      int toBBefore = wire.requests[1].get();
      System.out.println("instance B killed " + TimeUnit.NANOSECONDS.toMillis(t1 - t0) + " ms into the work, after " + killedAt + " of "
          + DEVICES * MUTATIONS + " mutations; back " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t1) + " ms later, after "
          + (backAt - killedAt) + " more");
      for (Future<?> f : work) {
        try {
          f.get(5, TimeUnit.MINUTES);
        } catch (ExecutionException e) {
          throw new AssertionError("a device failed: " + e.getCause(), e.getCause());
        }
      }
      pool.shutdown();
      System.out.println("devices done " + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) + " ms into the work; "
          + (wire.requests[1].get() - toBBefore) + " requests to B after its restart");
      for (int round = 0; round < 2; round++) { // the second round pulls what the others sent last
        for (CivicSyncClient c : devices) {
          syncUntilClean(c);
        }
      }
      watcher.stop(watching);
      // Both instances answered every duplicated push alike, and no request failed on the server.
      assertThat(wire.problems).as("answers of the same push from two instances, and 5xx answers").isEmpty();
      assertThat(wire.serverErrors.get()).as("5xx answers").isZero();
      assertThat(wire.decided.entrySet()).as("mutations decided (answered fresh) more than once").allMatch(e -> e.getValue().get() == 1);

      // The server's records, through the records API of either instance.
      Map<UUID, ObjectNode> truth = recordsApi(0, api);
      assertThat(recordsApi(1, api)).as("the records API of instance B").isEqualTo(truth);
      assertThat(truth.keySet()).as("records survived").hasSizeGreaterThan(DEVICES * MUTATIONS / 5);

      // Every device holds exactly the server's records, at the server's versions.
      for (int i = 0; i < DEVICES; i++) {
        assertThat(devices.get(i).status().pending()).as("device %s has nothing pending", i).isZero();
        assertThat(devices.get(i).outbox()).as("device %s outbox", i)
            .noneMatch(e -> e.state() == EntryState.PENDING || e.state() == EntryState.SENDING || e.state() == EntryState.HELD);
        assertThat(local(stores.get(i))).as("device %s converged with the server", i).isEqualTo(truth);
      }

      // The reader that paged through both instances while they were written saw every change.
      assertThat(watcher.problems).as("the feed read through both instances during the work").isEmpty();
      assertThat(watcher.live()).as("what the reader's feed added up to").isEqualTo(truth);
      assertThat(watcher.pages.get()).as("pages the reader pulled").isGreaterThan(20);

      // A full download from scratch, in small pages, through A, through B, and switching page by page.
      List<JsonNode> viaA = pullAll(reader.token(), 13, new int[] {0});
      List<JsonNode> viaB = pullAll(reader.token(), 13, new int[] {1});
      List<JsonNode> mixed = pullAll(reader.token(), 13, new int[] {0, 1, 1, 0});
      assertThat(positions(viaB)).as("the feed of instance B").isEqualTo(positions(viaA));
      assertThat(positions(mixed)).as("the feed read alternately").isEqualTo(positions(viaA));
      assertThat(feedView(viaA)).as("the feed from scratch holds the server's records").isEqualTo(truth);

      // Every mutation that crossed the wire was decided exactly once, however often it was sent.
      for (int i = 0; i < 2; i++) {
        JsonNode audit = call(i, "GET", "/v1/admin/audit/verify?tenant=" + tenant, admin(), null, 200);
        assertThat(audit.get("ok").asBoolean()).as("audit chain via instance %s: %s", i, audit).isTrue();
        assertThat(audit.get("logEntries").asLong()).as("one event-log entry per mutation sent (via instance %s)", i)
            .isEqualTo(wire.pushed.size());
      }
      // The event log, record by record, read through both instances: each mutation sent is in it
      // once, each record's versions follow one another, and the last is what the server holds.
      Map<UUID, Integer> logged = new HashMap<>();
      int k = 0;
      for (UUID id : wire.records) {
        JsonNode trail = call(k++ % 2, "GET", "/v1/audit/records/" + COLLECTION + "/" + id, reader.token(), null, 200);
        long lastSeq = 0;
        long lastVersion = 0;
        JsonNode lastAfter = null;
        for (JsonNode e : trail.get("entries")) {
          logged.merge(UUID.fromString(e.get("mutationId").asText()), 1, Integer::sum);
          assertThat(e.get("seq").asLong()).as("trail of %s in log order: %s", id, trail).isGreaterThan(lastSeq);
          lastSeq = e.get("seq").asLong();
          if (e.has("version")) {
            assertThat(e.get("version").asLong()).as("trail of %s: one version after the other: %s", id, trail).isEqualTo(lastVersion + 1);
            lastVersion = e.get("version").asLong();
            lastAfter = e.get("after");
          }
        }
        ObjectNode now = truth.get(id);
        if (now != null) {
          assertThat(entry(lastVersion, lastAfter)).as("the last version in the trail of %s is the record", id).isEqualTo(now);
        } else if (lastVersion > 0) {
          assertThat(lastAfter).as("record %s is gone: its trail ends in a deletion: %s", id, trail).isNull();
        }
      }
      assertThat(logged.keySet()).as("the mutations in the event log are those sent").isEqualTo(wire.pushed);
      assertThat(logged.entrySet()).as("mutations in the event log more than once").allMatch(e -> e.getValue() == 1);
      System.out.println("two instances: " + wire + ", " + watcher.pages.get() + " watcher pages, " + truth.size() + " records");
      assertThat(wire.requests[0].get()).as("requests to A").isPositive();
      assertThat(wire.requests[1].get()).as("requests to B").isPositive();
      assertThat(wire.sequentialDuplicates.get()).as("pushes repeated on the other instance").isPositive();
      assertThat(wire.racingDuplicates.get()).as("pushes raced on both instances").isPositive();
      assertThat(wire.pushed.size()).as("mutations sent").isGreaterThanOrEqualTo(SHARED + DEVICES * MUTATIONS / 2);
    } finally {
      devices.forEach(CivicSyncClient::close);
      wire.racer.shutdownNow();
    }
  }

  /** One device's work: rounds of creates, note appends, phone changes and deletes, synced after each round. */
  private static void work(CivicSyncClient c, long deviceSeed, Set<UUID> shared, AtomicInteger done) throws Exception {
    Random r = new Random(deviceSeed);
    Fixtures fx = new Fixtures(deviceSeed);
    for (int n = 0; n < MUTATIONS; ) {
      for (int k = 0; k < PER_ROUND && n < MUTATIONS; k++, n++, done.incrementAndGet()) {
        List<Map.Entry<UUID, ObjectNode>> all = c.collection(COLLECTION).all();
        List<Map.Entry<UUID, ObjectNode>> common = all.stream().filter(e -> shared.contains(e.getKey())).toList();
        int p = r.nextInt(100);
        if (p < 30 || all.isEmpty()) {
          c.collection(COLLECTION).create(fx.appointment());
          continue;
        }
        Map.Entry<UUID, ObjectNode> pick = !common.isEmpty() && r.nextBoolean() ? common.get(r.nextInt(common.size()))
            : all.get(r.nextInt(all.size()));
        if (p < 36) {
          c.collection(COLLECTION).delete(pick.getKey());
        } else if (p < 75) {
          ArrayNode notes = pick.getValue().has("notes") ? (ArrayNode) pick.getValue().get("notes").deepCopy()
              : Json.mapper().createArrayNode();
          notes.add("note " + Long.toHexString(deviceSeed) + "/" + n);
          ObjectNode patch = Json.mapper().createObjectNode();
          patch.set("notes", notes);
          c.collection(COLLECTION).update(pick.getKey(), patch);
        } else {
          c.collection(COLLECTION).update(pick.getKey(), Fixtures.patch("patientPhone", "+9477" + (1000000 + r.nextInt(8999999))));
        }
      }
      syncUntilClean(c);
    }
  }

  // ------------------------------------------------------------------ scenario 2

  @Test
  void mutationsHeldOnOneInstanceAreReleasedInOrderByTheOther() throws Exception {
    withSeed(this::heldAcrossInstances);
  }

  private void heldAcrossInstances() throws Exception {
    String tenant = "hold-" + System.nanoTime();
    String code = provision(tenant);
    Dev d = enrollRaw(tenant, code, 0);
    Dev other = enrollRaw(tenant, code, 1);
    Fixtures fx = new Fixtures(seed ^ 0x5eed);
    UUID r = fx.uuid();
    UUID s = fx.uuid();
    ObjectNode rData = fx.appointment();
    List<String> notes = new ArrayList<>();
    rData.get("notes").forEach(n -> notes.add(n.asText()));
    // deviceSeq 1..8, each (but the creates) based on the version the one before it produces.
    Map<Long, Mutation> m = new LinkedHashMap<>();
    m.put(1L, fx.create(r, rData)); // R v1
    m.put(2L, fx.update(r, 1, notesPatch(notes, "step 2"))); // R v2
    m.put(3L, fx.create(s)); // S v1
    m.put(4L, fx.update(r, 2, notesPatch(notes, "step 4"))); // R v3
    m.put(5L, fx.update(s, 1, Fixtures.patch("patientPhone", "+94770000005"))); // S v2
    m.put(6L, fx.delete(s, 2)); // S v3, deleted
    m.put(7L, fx.update(r, 3, notesPatch(notes, "step 7"))); // R v4
    m.put(8L, fx.update(r, 4, notesPatch(notes, "step 8"))); // R v5
    Map<Long, Long> version = Map.of(1L, 1L, 2L, 2L, 3L, 1L, 4L, 3L, 5L, 2L, 6L, 3L, 7L, 4L, 8L, 5L);

    // The latest arrive first, on B, out of order: held, waiting for 1.
    JsonNode late = push(1, d, List.of(m.get(8L), m.get(6L), m.get(7L), m.get(5L)));
    for (JsonNode res : late) {
      assertThat(res.get("status").asText()).as("%s", res).isEqualTo("held");
      assertThat(res.get("waitingFor").asLong()).as("%s", res).isEqualTo(1);
      assertThat(res.has("replayed")).as("first sending: %s", res).isFalse();
    }
    // The middle ones on A: held too, behind the same gap, with B's held ones still waiting.
    JsonNode middle = push(0, d, List.of(m.get(3L), m.get(2L), m.get(4L)));
    for (JsonNode res : middle) {
      assertThat(res.get("status").asText()).as("%s", res).isEqualTo("held");
      assertThat(res.get("waitingFor").asLong()).as("%s", res).isEqualTo(1);
      assertThat(res.has("replayed")).as("first sending: %s", res).isFalse();
    }
    // Sent again, on the other instance than first: still held, now as replays.
    for (JsonNode res : push(1, d, List.of(m.get(4L), m.get(2L)))) {
      assertThat(res.get("status").asText()).as("%s", res).isEqualTo("held");
      assertThat(res.get("replayed").asBoolean()).as("%s", res).isTrue();
    }
    for (JsonNode res : push(0, d, List.of(m.get(7L)))) {
      assertThat(res.get("status").asText()).as("%s", res).isEqualTo("held");
      assertThat(res.get("replayed").asBoolean()).as("%s", res).isTrue();
    }
    // Another device relaying one of them: held for the device that sent it first.
    JsonNode relayed = push(0, other, List.of(m.get(6L))).get(0);
    assertThat(relayed.get("status").asText()).as("%s", relayed).isEqualTo("held");
    assertThat(relayed.get("replayed").asBoolean()).as("%s", relayed).isTrue();
    assertThat(relayed.get("waitingFor").asLong()).as("%s", relayed).isEqualTo(6);
    assertThat(pullAll(d.token(), 50, new int[] {0, 1})).as("nothing is visible while the gap stands").isEmpty();
    assertThat(outcomes(1, d)).as("no outcome yet").isEmpty();

    // The missing first one arrives on A: A releases what B held, in deviceSeq order.
    JsonNode first = push(0, d, List.of(m.get(1L))).get(0);
    assertThat(first.get("status").asText()).as("%s", first).isEqualTo("applied");
    assertThat(first.get("version").asLong()).isEqualTo(1);
    List<JsonNode> outs = outcomes(1, d);
    assertThat(outs).as("one outcome per released mutation, read through B").hasSize(7);
    Map<UUID, JsonNode> outcomeOf = new HashMap<>();
    for (int i = 0; i < outs.size(); i++) {
      Mutation expected = m.get(i + 2L);
      JsonNode o = outs.get(i);
      assertThat(o.get("mutationId").asText()).as("outcomes in deviceSeq order: %s", outs).isEqualTo(expected.mutationId().toString());
      assertThat(o.get("status").asText()).as("released in order, each on the version before it: %s", o).isEqualTo("applied");
      assertThat(o.get("version").asLong()).as("%s", o).isEqualTo(version.get(i + 2L));
      outcomeOf.put(expected.mutationId(), o);
    }
    assertThat(outcomes(0, d)).as("the same outcomes through A").isEqualTo(outs);

    // Replays of the released ones answer their outcome, on either instance.
    List<Mutation> all = new ArrayList<>(m.values());
    for (int inst = 0; inst < 2; inst++) {
      JsonNode again = push(inst, d, all);
      for (int i = 0; i < all.size(); i++) {
        JsonNode res = again.get(i);
        assertThat(res.get("replayed").asBoolean()).as("%s", res).isTrue();
        JsonNode expected = i == 0 ? first : outcomeOf.get(all.get(i).mutationId());
        assertThat(stripReplayed(res)).as("replay on instance %s of deviceSeq %s", inst, i + 1).isEqualTo(stripReplayed(expected));
      }
    }

    // The feed through B shows the final versions: R with every note in order, S deleted.
    Map<String, JsonNode> feed = new HashMap<>();
    pullAll(d.token(), 1, new int[] {1, 0}).forEach(c -> feed.put(c.get("recordId").asText(), c));
    assertThat(feed).hasSize(2);
    JsonNode rNow = feed.get(r.toString());
    assertThat(rNow.get("op").asText()).isEqualTo("upsert");
    assertThat(rNow.get("version").asLong()).isEqualTo(5);
    List<String> rNotes = new ArrayList<>();
    rNow.get("data").get("notes").forEach(n -> rNotes.add(n.asText()));
    assertThat(rNotes).isEqualTo(notes);
    assertThat(feed.get(s.toString()).get("op").asText()).isEqualTo("delete");
    assertThat(feed.get(s.toString()).get("version").asLong()).isEqualTo(3);

    // The device's progress is in the database: its next mutation applies at once on B.
    JsonNode next = push(1, d, List.of(fx.update(r, 5, Fixtures.patch("patientPhone", "+94770000009")))).get(0);
    assertThat(next.get("status").asText()).as("%s", next).isEqualTo("applied");
    assertThat(next.get("version").asLong()).isEqualTo(6);

    // The other device's own mutations 2..5 wait on B (the relay above took none of its numbers);
    // its first one reaches both instances at the same moment: released once, in order.
    Fixtures fx2 = new Fixtures(seed ^ 0xbeef);
    UUID t = fx2.uuid();
    ObjectNode tData = fx2.appointment();
    List<String> tNotes = new ArrayList<>();
    tData.get("notes").forEach(n -> tNotes.add(n.asText()));
    List<Mutation> o = new ArrayList<>(List.of(fx2.create(t, tData)));
    for (long v = 1; v <= 4; v++) {
      o.add(fx2.update(t, v, notesPatch(tNotes, "visit " + v)));
    }
    for (JsonNode res : push(1, other, List.of(o.get(4), o.get(2), o.get(3), o.get(1)))) {
      assertThat(res.get("status").asText()).as("%s", res).isEqualTo("held");
      assertThat(res.get("waitingFor").asLong()).as("%s", res).isEqualTo(1);
    }
    String firstBody = pushBody(other, List.of(o.get(0)));
    List<java.util.concurrent.CompletableFuture<HttpResponse<String>>> race = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      race.add(http.sendAsync(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + ports[i] + "/v1/sync/push"))
          .header("Authorization", "Bearer " + other.token()).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString(firstBody)).build(), HttpResponse.BodyHandlers.ofString()));
    }
    List<JsonNode> answers = new ArrayList<>();
    for (var f : race) {
      HttpResponse<String> resp = f.get(60, TimeUnit.SECONDS);
      assertThat(resp.statusCode()).as("racing push: %s", resp.body()).isEqualTo(200);
      answers.add(Json.mapper().readTree(resp.body()).get("results").get(0));
    }
    assertThat(stripReplayed(answers.get(1))).as("both instances answer the same").isEqualTo(stripReplayed(answers.get(0)));
    assertThat(answers).as("exactly one instance decided it: %s", answers).filteredOn(a -> !a.path("replayed").asBoolean(false)).hasSize(1);
    assertThat(answers.get(0).get("status").asText()).isEqualTo("applied");
    List<JsonNode> otherOuts = outcomes(0, other);
    assertThat(otherOuts).as("released once each, in order: %s", otherOuts).hasSize(4);
    for (int i = 0; i < 4; i++) {
      assertThat(otherOuts.get(i).get("mutationId").asText()).isEqualTo(o.get(i + 1).mutationId().toString());
      assertThat(otherOuts.get(i).get("status").asText()).as("%s", otherOuts.get(i)).isEqualTo("applied");
      assertThat(otherOuts.get(i).get("version").asLong()).isEqualTo(i + 2);
    }
    JsonNode tNow = pullAll(other.token(), 500, new int[] {1}).stream().filter(c -> c.get("recordId").asText().equals(t.toString()))
        .findFirst().orElseThrow();
    assertThat(tNow.get("version").asLong()).isEqualTo(5);
    List<String> tGot = new ArrayList<>();
    tNow.get("data").get("notes").forEach(n -> tGot.add(n.asText()));
    assertThat(tGot).isEqualTo(tNotes);

    for (int i = 0; i < 2; i++) {
      JsonNode audit = call(i, "GET", "/v1/admin/audit/verify?tenant=" + tenant, admin(), null, 200);
      assertThat(audit.get("ok").asBoolean()).as("%s", audit).isTrue();
      assertThat(audit.get("logEntries").asLong()).as("each mutation logged once, however often sent").isEqualTo(9 + 5);
      assertThat(audit.get("outcomes").asLong()).as("one outcome per released mutation").isEqualTo(7 + 4);
    }
  }

  private static ObjectNode notesPatch(List<String> notes, String add) {
    notes.add(add);
    ObjectNode p = Json.mapper().createObjectNode();
    ArrayNode a = p.putArray("notes");
    notes.forEach(a::add);
    return p;
  }

  // ------------------------------------------------------------------ the two-way transport

  /** What the devices' transports saw on the wire, shared by all of them. */
  static final class Wire {
    final Set<UUID> pushed = ConcurrentHashMap.newKeySet();
    final Set<UUID> records = ConcurrentHashMap.newKeySet();
    /** Fresh (not replayed, not held) results seen per mutation: more than one is a double decision. */
    final Map<UUID, AtomicInteger> decided = new ConcurrentHashMap<>();
    final AtomicInteger[] requests = {new AtomicInteger(), new AtomicInteger()};
    final AtomicInteger sequentialDuplicates = new AtomicInteger();
    final AtomicInteger racingDuplicates = new AtomicInteger();
    final AtomicInteger serverErrors = new AtomicInteger();
    final AtomicInteger failures = new AtomicInteger();
    final Queue<String> problems = new ConcurrentLinkedQueue<>();
    final ExecutorService racer = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "racing-duplicate");
      t.setDaemon(true);
      return t;
    });
    volatile boolean bUp = true;

    void answered(Transport.Request req, Transport.Response r) {
      if (r.status() >= 500) {
        serverErrors.incrementAndGet();
        problems.add(req.method() + " " + req.path() + " answered " + r.status() + ": " + new String(r.body(), StandardCharsets.UTF_8));
        return;
      }
      if (r.status() != 200 || !isPush(req)) {
        return;
      }
      JsonNode sent;
      try {
        sent = Json.mapper().readTree(req.body()).get("mutations");
      } catch (IOException e) {
        throw new IllegalStateException("a push that is not JSON", e);
      }
      JsonNode results = results(r);
      for (int i = 0; i < results.size(); i++) {
        JsonNode res = results.get(i);
        if (!res.path("replayed").asBoolean(false) && !res.get("status").asText().equals("held")) {
          // The SDK asks for minimal answers: a result's position names its mutation.
          String id = res.has("mutationId") ? res.get("mutationId").asText() : sent.get(i).get("mutationId").asText();
          decided.computeIfAbsent(UUID.fromString(id), k -> new AtomicInteger()).incrementAndGet();
        }
      }
    }

    /** The same push answered by both instances: the same result per mutation, and only one fresh decision. */
    void compare(Transport.Response first, Transport.Response second, boolean raced) {
      if (first.status() != 200 || second.status() != 200) {
        problems.add("a duplicated push answered " + first.status() + " and " + second.status());
        return;
      }
      JsonNode a = results(first);
      JsonNode b = results(second);
      if (a.size() != b.size()) {
        problems.add("result counts differ: " + a + " vs " + b);
        return;
      }
      for (int i = 0; i < a.size(); i++) {
        boolean aFresh = !a.get(i).path("replayed").asBoolean(false);
        boolean bFresh = !b.get(i).path("replayed").asBoolean(false);
        if (!stripReplayed(a.get(i)).equals(stripReplayed(b.get(i)))) {
          problems.add((raced ? "racing" : "repeated") + " duplicate answered differently: " + a.get(i) + " vs " + b.get(i));
        } else if (raced ? aFresh && bFresh : bFresh) {
          problems.add((raced ? "racing" : "repeated") + " duplicate decided twice: " + a.get(i) + " vs " + b.get(i));
        }
      }
    }

    private static JsonNode results(Transport.Response r) {
      try {
        return Json.mapper().readTree(r.body()).get("results");
      } catch (IOException e) {
        throw new IllegalStateException("a push answer that is not JSON", e);
      }
    }

    @Override
    public String toString() {
      return requests[0] + " requests to A, " + requests[1] + " to B, " + sequentialDuplicates + " pushes repeated on the other, "
          + racingDuplicates + " raced, " + failures + " failed, " + pushed.size() + " mutations";
    }
  }

  static boolean isPush(Transport.Request req) {
    return req.method().equals("POST") && req.path().startsWith("/v1/sync/push");
  }

  static JsonNode stripReplayed(JsonNode result) {
    ObjectNode o = result.deepCopy();
    o.remove("replayed");
    return o;
  }

  private Transport[] transports() {
    Transport[] t = new Transport[2];
    for (int i = 0; i < 2; i++) {
      t[i] = new UrlConnectionTransport(URI.create("http://127.0.0.1:" + ports[i]), Duration.ofSeconds(5), Duration.ofSeconds(60));
    }
    return t;
  }

  /**
   * Sends each request to instance A or B at random; a fifth of the pushes go to both, one after
   * the other or at the same moment, and either answer is returned. While B is down, everything
   * goes to A.
   */
  static final class TwoWay implements Transport {
    private final Transport[] to;
    private final Random rnd;
    private final Wire wire;

    TwoWay(Transport[] to, long seed, Wire wire) {
      this.to = to;
      this.rnd = new Random(seed);
      this.wire = wire;
    }

    @Override
    public Response send(Request req) throws IOException {
      int pick;
      boolean duplicate;
      boolean race;
      boolean answerSecond;
      synchronized (rnd) {
        pick = rnd.nextInt(2);
        duplicate = rnd.nextInt(100) < 20;
        race = rnd.nextBoolean();
        answerSecond = rnd.nextBoolean();
      }
      boolean bothUp = wire.bUp;
      if (!bothUp) {
        pick = 0;
      }
      boolean push = isPush(req);
      if (push) {
        for (JsonNode m : Json.mapper().readTree(req.body()).get("mutations")) {
          wire.pushed.add(UUID.fromString(m.get("mutationId").asText()));
          wire.records.add(UUID.fromString(m.get("recordId").asText()));
        }
      }
      if (!push || !duplicate || !bothUp) {
        return one(pick, req);
      }
      int other = 1 - pick;
      Object first;
      Object second;
      if (race) {
        wire.racingDuplicates.incrementAndGet();
        Future<Object> f = wire.racer.submit(() -> attempt(other, req));
        first = attempt(pick, req);
        try {
          second = f.get(2, TimeUnit.MINUTES);
        } catch (Exception e) {
          throw new IOException("the racing copy did not finish", e);
        }
      } else {
        wire.sequentialDuplicates.incrementAndGet();
        first = attempt(pick, req);
        second = attempt(other, req);
      }
      if (first instanceof Response a && second instanceof Response b) {
        wire.compare(a, b, race);
        return answerSecond ? b : a;
      }
      if (first instanceof Response a) {
        return a;
      }
      if (second instanceof Response b) {
        return b;
      }
      throw (IOException) first;
    }

    private Response one(int i, Request req) throws IOException {
      Object r = attempt(i, req);
      if (r instanceof IOException e) {
        throw e;
      }
      return (Response) r;
    }

    /** The response, or the IOException the instance's connection ended with. */
    private Object attempt(int i, Request req) {
      wire.requests[i].incrementAndGet();
      try {
        Response r = to[i].send(req);
        wire.answered(req, r);
        return r;
      } catch (IOException e) {
        wire.failures.incrementAndGet();
        return e;
      }
    }
  }

  // ------------------------------------------------------------------ the feed watcher

  /**
   * Pulls in pages of 7, each page from instance A or B at random (the other when one is down),
   * while devices push to both: every record's version only grows in the feed, and what the pages
   * add up to is what the server holds.
   */
  final class Watcher implements Runnable {
    final String token;
    final Random rnd;
    final Wire wire;
    final Map<UUID, ObjectNode> seen = new ConcurrentHashMap<>();
    final Map<UUID, Long> versions = new ConcurrentHashMap<>();
    final Queue<String> problems = new ConcurrentLinkedQueue<>();
    final AtomicInteger pages = new AtomicInteger();
    final AtomicBoolean stopping = new AtomicBoolean();
    volatile String cursor;
    volatile Throwable died;

    Watcher(String token, long seed, Wire wire) {
      this.token = token;
      this.rnd = new Random(seed);
      this.wire = wire;
    }

    @Override
    public void run() {
      try {
        while (!stopping.get()) {
          if (!page()) {
            Thread.sleep(50);
          }
        }
      } catch (Throwable t) {
        died = t;
      }
    }

    /** One page; true when it had changes. */
    boolean page() throws Exception {
      int inst = wire.bUp ? rnd.nextInt(2) : 0;
      HttpResponse<String> r;
      try {
        r = send(inst, "GET", "/v1/sync/pull?limit=7" + (cursor == null ? "" : "&cursor=" + cursor), token, null);
      } catch (IOException down) {
        return false; // that instance is being killed: the next page goes elsewhere, from the same cursor
      }
      if (r.statusCode() != 200) {
        problems.add("pull via " + "AB".charAt(inst) + " answered " + r.statusCode() + ": " + r.body());
        return false;
      }
      JsonNode page = Json.mapper().readTree(r.body());
      pages.incrementAndGet();
      Set<UUID> inPage = new HashSet<>();
      for (JsonNode c : page.get("changes")) {
        UUID id = UUID.fromString(c.get("recordId").asText());
        long v = c.get("version").asLong();
        if (!inPage.add(id)) {
          problems.add("record " + id + " twice in one page via " + "AB".charAt(inst));
        }
        Long before = versions.get(id);
        if (before != null && v <= before) {
          problems.add("record " + id + " went from version " + before + " to " + v + " in the feed via " + "AB".charAt(inst));
        }
        versions.put(id, v);
        seen.put(id, entry(v, c.get("op").asText().equals("upsert") ? c.get("data") : null));
      }
      String next = page.get("cursor").asText();
      if (!page.get("changes").isEmpty() && next.equals(cursor)) {
        problems.add("a page with changes left the cursor where it was");
      }
      cursor = next;
      return !page.get("changes").isEmpty();
    }

    /** Stops the background reading, then reads to the end. */
    void stop(Thread t) throws Exception {
      stopping.set(true);
      t.join(30_000);
      assertThat(died).as("the watcher").isNull();
      while (page()) {
        // catching up
      }
    }

    Map<UUID, ObjectNode> live() {
      Map<UUID, ObjectNode> out = new HashMap<>();
      seen.forEach((id, e) -> {
        if (e.has("data")) {
          out.put(id, e);
        }
      });
      return out;
    }
  }

  // ------------------------------------------------------------------ helpers

  /** Runs the scenario, naming the seed in any failure. */
  private void withSeed(Scenario s) throws Exception {
    try {
      s.run();
    } catch (AssertionError | Exception e) {
      throw new AssertionError("failed with seed " + seed + " (rerun with -Dcivicsync.twoInstances.seed=" + seed + "): " + e.getMessage(), e);
    }
  }

  @FunctionalInterface
  private interface Scenario {
    void run() throws Exception;
  }

  private record Dev(String token, UUID id, Ed25519.KeyPair keys, String tenant) {}

  /** Any 2xx of a write that may answer 200 or 201. */
  private static final int OK = -1;

  private static String admin() {
    return CrashSafetyTest.ADMIN;
  }

  private HttpResponse<String> send(int inst, String method, String path, String bearer, String body) throws IOException, InterruptedException {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + ports[inst] + path)).timeout(Duration.ofSeconds(60))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
    if (body != null) {
      b.header("Content-Type", "application/json");
    }
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private JsonNode call(int inst, String method, String path, String bearer, String body, int status) throws Exception {
    HttpResponse<String> r = send(inst, method, path, bearer, body);
    if (status == OK) {
      assertThat(r.statusCode()).as("%s %s via %s: %s", method, path, "AB".charAt(inst), r.body()).isBetween(200, 201);
    } else {
      assertThat(r.statusCode()).as("%s %s via %s: %s", method, path, "AB".charAt(inst), r.body()).isEqualTo(status);
    }
    return Json.mapper().readTree(r.body());
  }

  /** A tenant with an admin user, set up half through each instance; returns an enrollment code. */
  private String provision(String tenant) throws Exception {
    call(0, "POST", "/v1/admin/tenants", admin(), "{\"tenantId\":\"" + tenant + "\"}", OK);
    call(1, "PUT", "/v1/admin/tenants/" + tenant + "/users/clerk", admin(), "{\"roles\":[\"admin\"]}", OK);
    return call(0, "POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", admin(), "{\"userId\":\"clerk\",\"maxUses\":50}", OK)
        .get("code").asText();
  }

  private Dev enrollRaw(String tenant, String code, int inst) throws Exception {
    Ed25519.KeyPair keys = Ed25519.generate();
    JsonNode e = call(inst, "POST", "/v1/devices/enroll", null, "{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"raw\",\"publicKey\":\""
        + keys.publicKey().encoded() + "\"}", OK);
    return new Dev(e.get("token").asText(), UUID.fromString(e.get("deviceId").asText()), keys, tenant);
  }

  private static String pushBody(Dev d, List<Mutation> mutations) {
    ObjectNode body = Json.mapper().createObjectNode();
    ArrayNode arr = body.putArray("mutations");
    for (Mutation m : mutations) {
      arr.add(Json.mapper().<JsonNode>valueToTree(Envelopes.sign(m, d.tenant(), d.id(), d.keys().privateKey())));
    }
    return body.toString();
  }

  /** Pushes the mutations, signed by the device, through one instance; returns the results. */
  private JsonNode push(int inst, Dev d, List<Mutation> mutations) throws Exception {
    JsonNode results = call(inst, "POST", "/v1/sync/push", d.token(), pushBody(d, mutations), 200).get("results");
    assertThat(results).hasSize(mutations.size());
    return results;
  }

  private List<JsonNode> outcomes(int inst, Dev d) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    String cursor = null;
    while (true) {
      JsonNode page = call(inst, "GET", "/v1/sync/outcomes?limit=2" + (cursor == null ? "" : "&cursor=" + cursor), d.token(), null, 200);
      page.get("outcomes").forEach(out::add);
      cursor = page.get("cursor").asText();
      if (!page.get("hasMore").asBoolean()) {
        return out;
      }
    }
  }

  /** The whole feed from the beginning, page after page through the instances named in turn. */
  private List<JsonNode> pullAll(String token, int limit, int[] instances) throws Exception {
    List<JsonNode> out = new ArrayList<>();
    Set<String> ids = new HashSet<>();
    String cursor = null;
    for (int page = 0; ; page++) {
      int inst = instances[page % instances.length];
      JsonNode r = call(inst, "GET", "/v1/sync/pull?limit=" + limit + (cursor == null ? "" : "&cursor=" + cursor), token, null, 200);
      assertThat(r.get("changes").size()).isLessThanOrEqualTo(limit);
      for (JsonNode c : r.get("changes")) {
        assertThat(ids.add(c.get("recordId").asText())).as("record %s delivered twice in one download", c.get("recordId")).isTrue();
        out.add(c);
      }
      String next = r.get("cursor").asText();
      if (!r.get("changes").isEmpty()) {
        assertThat(next).as("the cursor moves on after a page with changes").isNotEqualTo(cursor);
      }
      cursor = next;
      if (!r.get("hasMore").asBoolean()) {
        return out;
      }
    }
  }

  /** The feed as (record, version, op), in feed order. */
  private static List<String> positions(List<JsonNode> feed) {
    return feed.stream().map(c -> c.get("recordId").asText() + "@" + c.get("version").asLong() + ":" + c.get("op").asText()).toList();
  }

  private static Map<UUID, ObjectNode> feedView(List<JsonNode> feed) {
    Map<UUID, ObjectNode> out = new HashMap<>();
    for (JsonNode c : feed) {
      if (c.get("op").asText().equals("upsert")) {
        out.put(UUID.fromString(c.get("recordId").asText()), entry(c.get("version").asLong(), c.get("data")));
      }
    }
    return out;
  }

  private static ObjectNode entry(long version, JsonNode data) {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("version", version);
    if (data != null) {
      o.set("data", data.deepCopy());
    }
    return o;
  }

  /** Every live record as the records API lists it, as (version, data). */
  private Map<UUID, ObjectNode> recordsApi(int inst, String apiToken) throws Exception {
    Map<UUID, ObjectNode> out = new HashMap<>();
    String after = null;
    while (true) {
      JsonNode page = call(inst, "GET", "/v1/records/" + COLLECTION + "?limit=1000" + (after == null ? "" : "&after=" + after), apiToken, null, 200);
      for (JsonNode rec : page.get("records")) {
        out.put(UUID.fromString(rec.get("recordId").asText()), entry(rec.get("version").asLong(), rec.get("data")));
      }
      if (!page.hasNonNull("next")) {
        return out;
      }
      after = page.get("next").asText();
    }
  }

  /** A device's records as the server last confirmed them, as (version, data). */
  private static Map<UUID, ObjectNode> local(InMemoryLocalStore store) {
    Map<UUID, ObjectNode> out = new HashMap<>();
    store.transaction(tx -> tx.query(RecordQuery.all(COLLECTION))).forEach((LocalRecord r) -> {
      assertThat(r.dirty()).as("record %s has unsynced changes", r.recordId()).isFalse();
      assertThat(r.data()).as("what the user sees of %s is what the server confirmed", r.recordId()).isEqualTo(r.serverData());
      out.put(r.recordId(), entry(r.serverVersion(), r.data()));
    });
    return out;
  }

  /** Syncs until nothing is pending, riding out an instance that is down. */
  private static void syncUntilClean(CivicSyncClient c) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
    while (System.nanoTime() < deadline) {
      try {
        if (c.sync().status().pending() == 0) {
          return;
        }
      } catch (IOException e) {
        Thread.sleep(50);
      } catch (ApiError e) {
        if (e.status() < 500) {
          throw e;
        }
        Thread.sleep(50);
      }
    }
    throw new AssertionError("a device could not get its outbox through: " + c.status());
  }
}
