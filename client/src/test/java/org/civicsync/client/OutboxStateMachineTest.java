package org.civicsync.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import java.util.stream.Stream;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.transport.Transport;
import org.civicsync.contracts.CollectionsResponse;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The outbox entry's life, as a table: a local change, the server's answer to its push, and where
 * the entry, the record and the user's events end up. The server is a scripted fake transport that
 * also checks every pushed mutation's signature.
 */
class OutboxStateMachineTest {
  private static final UUID DEVICE = UUID.fromString("3f2a1b0c-9d8e-4f7a-a6b5-c4d3e2f1a0b9");

  /** A scripted server: answers each pushed mutation with {@code answer}, or fails the exchange. */
  static final class FakeServer implements Transport {
    Function<Mutation, MutationResult> answer = m -> MutationResult.applied(m.mutationId(), m.recordId(), m.baseVersion() + 1);
    boolean down;
    boolean loseNextAnswer;
    /** Runs on each push (numbered from 0) as it arrives, before the server acts on it; may throw. */
    volatile PushHook beforePush;
    private int pushes;
    final List<Mutation> received = new ArrayList<>();
    String publicKey;

    @Override
    public Response send(Request r) throws IOException {
      if (down) {
        throw new java.net.ConnectException("offline");
      }
      Object body;
      String path = r.path();
      if (path.startsWith("/v1/devices/enroll")) {
        publicKey = Json.mapper().readTree(r.body()).get("publicKey").asText();
        body = new EnrollResponse(DEVICE, "t", "u", "csd_token", Instant.now().plusSeconds(3600));
      } else if (path.startsWith("/v1/collections")) {
        body = new CollectionsResponse(CollectionCatalog.builtInDefinitions());
      } else if (path.startsWith("/v1/sync/push")) {
        PushHook hook = beforePush;
        if (hook != null) {
          hook.arrived(pushes);
        }
        pushes++;
        PushRequest p = Json.mapper().readValue(r.body(), PushRequest.class);
        List<MutationResult> out = new ArrayList<>();
        for (Mutation m : p.mutations()) {
          assertThat(Envelopes.verify(m, "t", DEVICE, Ed25519.publicKey(publicKey).orElseThrow())).as("signed by the device").isTrue();
          received.add(m);
          out.add(answer.apply(m));
        }
        body = new PushResponse(out, Instant.now());
        if (loseNextAnswer) {
          loseNextAnswer = false;
          throw new java.net.SocketException("connection reset: the server acted, the answer is lost");
        }
      } else if (path.startsWith("/v1/sync/pull")) {
        body = new PullResponse(List.of(), "c", false);
      } else if (path.startsWith("/v1/sync/outcomes")) {
        body = new OutcomesResponse(List.of(), "o", false);
      } else {
        throw new IllegalStateException(path);
      }
      return new Response(200, Map.of(), Json.mapper().writeValueAsBytes(body), 0);
    }
  }

  @FunctionalInterface
  interface PushHook {
    void arrived(int push) throws IOException;
  }

  private static ObjectNode booking() {
    ObjectNode d = Json.mapper().createObjectNode();
    d.put("patientName", "Nimali Perera").put("clinicId", "clinic-1").put("slotStart", "2026-12-01T03:00:00Z");
    return d;
  }

  private record Setup(FakeServer server, CivicSyncClient client, List<SyncEvent> events, UUID id) {}

  /** A client with one record the server confirmed at version 1 (when {@code confirmed}), nothing pending. */
  private static Setup setup(boolean confirmed) throws Exception {
    FakeServer server = new FakeServer();
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(server).build();
    c.enroll("CODE", "tablet");
    List<SyncEvent> events = new CopyOnWriteArrayList<>();
    c.addSyncListener(new Listeners.SyncListener() {
      @Override
      public void event(SyncEvent e) {
        events.add(e);
      }
    });
    UUID id = null;
    if (confirmed) {
      id = c.collection("appointments").create(booking());
      c.sync();
      assertThat(c.outbox()).isEmpty();
    }
    return new Setup(server, c, events, id);
  }

  static MutationResult rejected(Mutation m) {
    return MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(ErrorCode.CAPACITY_EXCEEDED, "that slot is full"));
  }

  static ServerRecord serverRecord(Mutation m, long version, String phone) {
    ObjectNode d = booking().put("status", "booked").put("patientPhone", phone);
    d.putArray("notes");
    return new ServerRecord(m.collection(), m.recordId(), version, false, d, Instant.now());
  }

  static Stream<Arguments> table() {
    Function<Mutation, MutationResult> applied = m -> MutationResult.applied(m.mutationId(), m.recordId(), m.baseVersion() + 1);
    Function<Mutation, MutationResult> held = m -> MutationResult.held(m.mutationId(), m.recordId(), 1);
    Function<Mutation, MutationResult> refused = OutboxStateMachineTest::rejected;
    Function<Mutation, MutationResult> conflict = m -> new MutationResult(m.mutationId(), MutationStatus.CONFLICT, m.recordId(), null,
        ErrorDetail.of(ErrorCode.VERSION_CONFLICT, "parked"), serverRecord(m, 2, "+94770000009"), null, null, null,
        UUID.randomUUID(), List.of("patientPhone"), null, null);
    Function<Mutation, MutationResult> merged = m -> MutationResult.merged(m.mutationId(), serverRecord(m, 3, "+94770000007"), List.of(),
        "merge");
    return Stream.of(
        // change, server answer, entry state after (null: cleared), local phone after ("" none, null: record gone), event
        Arguments.of("create", applied, null, "", null),
        Arguments.of("create", held, EntryState.HELD, "", null),
        Arguments.of("create", refused, EntryState.REJECTED, null, SyncEvent.Rejected.class),
        Arguments.of("update", applied, null, "+94771111111", null),
        Arguments.of("update", refused, EntryState.REJECTED, "", SyncEvent.Rejected.class),
        Arguments.of("update", conflict, EntryState.CONFLICT, "+94770000009", SyncEvent.Conflict.class),
        Arguments.of("update", merged, null, "+94770000007", SyncEvent.Merged.class),
        Arguments.of("delete", applied, null, null, null));
  }

  @ParameterizedTest(name = "{0} answered {2} -> entry {2}, phone {3}")
  @MethodSource("table")
  void theServersAnswerMovesTheEntryAndTheRecordWhereTheTableSays(String change, Function<Mutation, MutationResult> answer,
      EntryState after, String phone, Class<?> event) throws Exception {
    Setup s = setup(!change.equals("create"));
    UUID id = s.id();
    switch (change) {
      case "create" -> id = s.client().collection("appointments").create(booking());
      case "update" -> s.client().collection("appointments").update(id, Json.mapper().createObjectNode().put("patientPhone", "+94771111111"));
      default -> s.client().collection("appointments").delete(id);
    }
    assertThat(s.client().outbox()).singleElement().satisfies(e -> assertThat(e.state()).isEqualTo(EntryState.PENDING));
    s.server().answer = answer;
    s.client().sync();
    List<OutboxEntry> box = s.client().outbox();
    if (after == null) {
      assertThat(box).isEmpty();
    } else {
      assertThat(box).singleElement().satisfies(e -> assertThat(e.state()).isEqualTo(after));
    }
    Optional<ObjectNode> rec = s.client().collection("appointments").get(id);
    if (phone == null) {
      assertThat(rec).isEmpty();
    } else {
      assertThat(rec).isPresent();
      JsonNode p = rec.get().get("patientPhone");
      assertThat(p == null ? "" : p.asText()).isEqualTo(phone);
    }
    if (event == null) {
      assertThat(s.events()).isEmpty();
    } else {
      assertThat(s.events()).singleElement().isInstanceOf(event);
    }
  }

  @Test
  void aLostAnswerLeavesTheEntrySendingAndTheRetryCarriesTheSameMutation() throws Exception {
    Setup s = setup(false);
    UUID id = s.client().collection("appointments").create(booking());
    s.server().loseNextAnswer = true;
    assertThatThrownBy(() -> s.client().sync()).isInstanceOf(IOException.class);
    // The exchange failed before the answer: the push counts as not answered.
    assertThat(s.client().outbox()).singleElement().satisfies(e -> {
      assertThat(e.state()).isIn(EntryState.SENDING);
      assertThat(e.attempts()).isEqualTo(1);
    });
    s.server().answer = m -> MutationResult.applied(m.mutationId(), m.recordId(), 1).asReplay();
    s.client().sync();
    assertThat(s.client().outbox()).isEmpty();
    assertThat(s.server().received).extracting(Mutation::mutationId).containsOnly(s.server().received.get(0).mutationId());
    assertThat(s.server().received.get(0)).as("the same signed bytes both times").isEqualTo(s.server().received.get(1));
    assertThat(s.client().collection("appointments").get(id)).isPresent();
  }

  @Test
  void editsOfAnUnsentRecordFoldIntoItsEntryButEditsDuringAPushWaitForItsAnswer() throws Exception {
    Setup s = setup(true);
    UUID id = s.id();
    var appts = s.client().collection("appointments");
    appts.update(id, Json.mapper().createObjectNode().put("patientPhone", "+94770000001"));
    appts.update(id, Json.mapper().createObjectNode().put("patientPhone", "+94770000002"));
    assertThat(s.client().outbox()).as("folded: one entry").singleElement()
        .satisfies(e -> assertThat(e.mutation().data().get("patientPhone").asText()).isEqualTo("+94770000002"));
    // While that update is on its way (the answer lost), another edit waits in the record.
    s.server().answer = m -> MutationResult.applied(m.mutationId(), m.recordId(), 2);
    s.server().loseNextAnswer = true;
    assertThatThrownBy(() -> s.client().sync()).isInstanceOf(IOException.class);
    appts.update(id, Json.mapper().createObjectNode().put("patientName", "Nimali P."));
    assertThat(s.client().outbox()).as("no new entry while the earlier one is in flight").hasSize(1);
    assertThat(s.client().status().pending()).isEqualTo(2);
    s.server().answer = m -> MutationResult.applied(m.mutationId(), m.recordId(), m.baseVersion() + 1);
    s.client().sync();
    assertThat(s.client().outbox()).isEmpty();
    Mutation last = s.server().received.get(s.server().received.size() - 1);
    assertThat(last.baseVersion()).as("based on the version the first answer gave").isEqualTo(2);
    assertThat(last.data().get("patientName").asText()).isEqualTo("Nimali P.");
    assertThat(last.data().has("patientPhone")).as("only what changed since").isFalse();
    assertThat(appts.get(id).orElseThrow().get("patientPhone").asText()).isEqualTo("+94770000002");
    assertThat(s.client().status().pending()).isZero();
  }

  @Test
  void newRecordsAndMutationsGetIdsOrderedByTheDevicesClock() throws Exception {
    // A device's clock may be far off (here: a year behind); its ids follow it all the same.
    Instant clock = Instant.parse("2025-12-06T10:00:00.123Z");
    FakeServer server = new FakeServer();
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(server)
        .clock(java.time.Clock.fixed(clock, java.time.ZoneOffset.UTC)).build();
    c.enroll("CODE", "tablet");
    UUID id = c.collection("appointments").create(booking());
    c.sync();
    Mutation sent = server.received.get(0);
    assertThat(sent.recordId()).isEqualTo(id);
    assertThat(List.of(id, sent.mutationId())).doesNotHaveDuplicates().allSatisfy(u -> {
      assertThat(u.version()).isEqualTo(7);
      assertThat(org.civicsync.core.ids.Uuid7.millis(u)).isEqualTo(clock.toEpochMilli());
    });
  }

  @Test
  void deviceSequenceNumbersHaveNoGapsWhateverIsFoldedOrWaiting() throws Exception {
    Setup s = setup(false);
    var appts = s.client().collection("appointments");
    UUID a = appts.create(booking());
    appts.update(a, Json.mapper().createObjectNode().put("patientPhone", "+94770000001"));
    appts.delete(a); // waits for the create: nothing to delete on the server yet
    UUID b = appts.create(booking().put("slotStart", "2026-12-01T04:00:00Z"));
    s.client().sync();
    s.client().sync();
    assertThat(s.server().received).extracting(Mutation::deviceSeq).containsExactly(1L, 2L, 3L);
    assertThat(appts.get(a)).isEmpty();
    assertThat(appts.get(b)).isPresent();
  }

  /** The outbox's states in device order, e.g. "SENDING SENDING PENDING". */
  private static String states(CivicSyncClient c) {
    return c.outbox().stream().map(e -> e.state().name()).collect(java.util.stream.Collectors.joining(" "));
  }

  /** Waits (on the push's thread) until the outbox shows {@code expected}, or fails saying what it shows. */
  private static void awaitOutbox(CivicSyncClient c, String expected) {
    long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10);
    while (!states(c).equals(expected)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("the outbox shows [" + states(c) + "], not [" + expected + "]");
      }
      Thread.onSpinWait();
    }
  }

  private static CivicSyncClient clientWithSixQueued(FakeServer server) throws Exception {
    CivicSyncClient c = CivicSyncClient.builder().store(new InMemoryLocalStore()).transport(server).batchSize(2).build();
    c.enroll("CODE", "tablet");
    for (int i = 0; i < 6; i++) {
      c.collection("appointments").create(booking().put("slotStart", "2026-12-01T0" + i + ":00:00Z"));
    }
    return c;
  }

  private static void assertAllSixArrivedInOrder(CivicSyncClient c, FakeServer server) {
    assertThat(c.outbox()).isEmpty();
    assertThat(server.received).extracting(Mutation::deviceSeq).containsExactly(1L, 2L, 3L, 4L, 5L, 6L);
  }

  @Test
  void theNextBatchIsTakenWhileAPushCrossesAndAnAnswerSettlesWhileTheNextOneCrosses() throws Exception {
    FakeServer server = new FakeServer();
    CivicSyncClient c = clientWithSixQueued(server);
    List<String> seen = new CopyOnWriteArrayList<>();
    server.beforePush = push -> {
      // While each push is on its way, the device does its own work: it takes the batch after it
      // (pushes 0 and 1) and settles the answer before it (pushes 1 and 2).
      awaitOutbox(c, List.of("SENDING SENDING SENDING SENDING PENDING PENDING", "SENDING SENDING SENDING SENDING",
          "SENDING SENDING").get(push));
      seen.add(states(c));
    };
    assertThat(c.sync().pushed()).isEqualTo(6);
    assertThat(seen).hasSize(3);
    assertAllSixArrivedInOrder(c, server);
    c.close();
  }

  @Test
  void aResetGivesBackTheBatchTakenAheadAndTheRetrySendsTheBrokenOneAgainInOrder() throws Exception {
    FakeServer server = new FakeServer();
    CivicSyncClient c = clientWithSixQueued(server);
    server.beforePush = push -> {
      if (push == 1) {
        awaitOutbox(c, "SENDING SENDING SENDING SENDING");
        throw new java.net.SocketException("connection reset");
      }
    };
    assertThatThrownBy(c::sync).isInstanceOf(IOException.class);
    // The broken push may have reached the server: it stays sending, to go again unchanged. The
    // batch taken ahead of it never left the device, and is back as it was.
    assertThat(c.outbox()).extracting(OutboxEntry::state, OutboxEntry::attempts).containsExactly(
        org.assertj.core.groups.Tuple.tuple(EntryState.SENDING, 1), org.assertj.core.groups.Tuple.tuple(EntryState.SENDING, 1),
        org.assertj.core.groups.Tuple.tuple(EntryState.PENDING, 0), org.assertj.core.groups.Tuple.tuple(EntryState.PENDING, 0));
    server.beforePush = null;
    assertThat(c.sync().pushed()).isEqualTo(4);
    assertAllSixArrivedInOrder(c, server);
    c.close();
  }

  @Test
  void aPushThatCouldNotConnectLeavesEveryEntryPending() throws Exception {
    FakeServer server = new FakeServer();
    CivicSyncClient c = clientWithSixQueued(server);
    server.beforePush = push -> {
      awaitOutbox(c, "SENDING SENDING SENDING SENDING PENDING PENDING");
      throw new java.net.ConnectException("no route out");
    };
    assertThatThrownBy(c::sync).isInstanceOf(java.net.ConnectException.class);
    assertThat(c.outbox()).extracting(OutboxEntry::state).containsOnly(EntryState.PENDING);
    assertThat(c.outbox()).extracting(OutboxEntry::attempts).containsOnly(0);
    c.close();
  }

  @Test
  void closingTheClientDuringASyncLetsThePushOnItsWayFinishAndPutsBackWhatNeverLeft() throws Exception {
    FakeServer server = new FakeServer();
    CivicSyncClient c = clientWithSixQueued(server);
    java.util.concurrent.CountDownLatch inPush = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    server.beforePush = push -> {
      if (push == 0) {
        awaitOutbox(c, "SENDING SENDING SENDING SENDING PENDING PENDING");
        inPush.countDown();
        try {
          release.await();
        } catch (InterruptedException e) {
          throw new java.io.InterruptedIOException();
        }
      }
    };
    java.util.concurrent.ExecutorService app = java.util.concurrent.Executors.newSingleThreadExecutor();
    java.util.concurrent.Future<?> sync = app.submit(() -> {
      c.sync();
      return null;
    });
    inPush.await();
    Thread closer = new Thread(c::close);
    closer.start();
    Thread.sleep(200); // close() has begun: it waits for the push on its way
    release.countDown();
    closer.join(20_000);
    try {
      sync.get(20, java.util.concurrent.TimeUnit.SECONDS);
    } catch (java.util.concurrent.ExecutionException ended) {
      // A sync may end either way when its client closes under it.
    }
    app.shutdown();
    // Whatever the server did not receive never left the device: pending, as before the sync.
    List<UUID> received = server.received.stream().map(Mutation::mutationId).toList();
    assertThat(received).as("the push on its way went through").hasSizeGreaterThanOrEqualTo(2);
    assertThat(c.outbox()).allSatisfy(e -> {
      if (!received.contains(e.mutationId())) {
        assertThat(e.state()).isEqualTo(EntryState.PENDING);
        assertThat(e.attempts()).isZero();
      }
    });
  }
}
