package org.civicsync.testing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.BooleanSupplier;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.server.audit.AuditedStore;
import org.civicsync.server.events.EventPublisher;
import org.civicsync.server.events.EventRelay;
import org.civicsync.server.push.PushService;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The relay publishes every committed change once, in order per tenant, whatever the broker and the relay go through. */
class EventRelayTest {
  private static final EventRelay.Settings FAST = new EventRelay.Settings(50, Duration.ofMillis(50), Duration.ofMillis(5), Duration.ofMillis(50));
  private final CollectionCatalog catalog = CollectionCatalog.of(CollectionCatalog.builtInDefinitions());
  private InMemoryServerStore store;
  private PushService push;
  private TenancyService tenancy;
  private int devices;
  private final FakeEventBroker broker = new FakeEventBroker();

  @BeforeEach
  void open() {
    store = new InMemoryServerStore();
    push = new PushService(AuditedStore.wrap(store, catalog, Clock.systemUTC()).withDomainEvents(true), catalog, Clock.systemUTC());
    tenancy = new TenancyService(store, Clock.systemUTC());
  }

  /** Pushes {@code n} bookings and one update of each from a fresh device of {@code tenant}: 2n changes. */
  private void work(String tenant, int n) {
    tenancy.ensureTenant(tenant);
    Caller.Device d = TestDevices.enroll(tenancy, tenant);
    Fixtures fx = new Fixtures(++devices); // deviceSeq starts at 1 for each device
    List<Mutation> ms = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      // Cancelled bookings take no slot, so no capacity rule refuses any of them.
      Mutation create = fx.create(fx.uuid(), fx.appointment().put("status", "cancelled"));
      ms.add(create);
      ms.add(fx.update(create.recordId(), 1, Fixtures.patch("patientName", "Renamed " + i)));
    }
    List<org.civicsync.contracts.MutationResult> results = push.push(d, TestDevices.signed(d, ms)).results();
    assertThat(results).as(tenant).allSatisfy(r -> assertThat(r.status()).as(String.valueOf(r.error()))
        .isEqualTo(org.civicsync.contracts.MutationStatus.APPLIED));
  }

  private static void await(BooleanSupplier done, java.util.function.Supplier<String> what) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting until " + what.get());
      }
      Thread.sleep(5);
    }
  }

  /** Every stored event once, and per tenant in strictly increasing seq order. */
  private void assertEachOnceInOrder(int expected) throws Exception {
    List<EventPublisher.Outgoing> stored = broker.stored();
    assertThat(stored).hasSize(expected);
    Map<String, Long> lastSeq = new TreeMap<>();
    for (EventPublisher.Outgoing e : stored) {
      JsonNode json = Json.mapper().readTree(e.payload());
      String tenant = json.get("tenantId").asText();
      long seq = json.get("seq").asLong();
      assertThat(seq).as("order within " + tenant).isGreaterThan(lastSeq.getOrDefault(tenant, 0L));
      lastSeq.put(tenant, seq);
      assertThat(e.subject()).isEqualTo("civicsync." + tenant + ".appointments." + json.get("op").asText());
    }
  }

  @Test
  void everyCommittedChangeIsPublishedOnceAndInOrderPerTenant() throws Exception {
    work("t-a", 40);
    try (EventRelay relay = new EventRelay(store, broker.publisher(), Clock.systemUTC(), FAST, new Random(1)).start()) {
      work("t-b", 30);
      work("t-a", 10);
      await(() -> relay.published() == 160, () -> "the relay counted 160 published (" + relay.published() + ", broker " + broker.stored().size()
          + ", backlog " + store.eventBacklog().pending() + ")");
      assertThat(store.eventBacklog().pending()).isZero();
    }
    assertEachOnceInOrder(160);
  }

  @Test
  void aBrokerThatIsDownDelaysEventsButLosesNone() throws Exception {
    broker.refuseNext(6);
    work("t-down", 25);
    try (EventRelay relay = new EventRelay(store, broker.publisher(), Clock.systemUTC(), FAST, new Random(2)).start()) {
      await(() -> store.eventBacklog().pending() == 0, () -> "the outbox is empty");
      assertThat(relay.failures()).isGreaterThanOrEqualTo(6);
    }
    assertEachOnceInOrder(50);
  }

  @Test
  void lostAcknowledgementsAndARelayThatDiesBetweenPublishingAndMarkingPublishNothingTwice() throws Exception {
    work("t-crash", 30);
    broker.loseAnswerOfNext(2);
    EventPublisher dies = new EventPublisher() {
      private final EventPublisher inner = broker.publisher();
      private int calls;

      @Override
      public void publish(List<Outgoing> events) throws PublishException {
        inner.publish(events);
        if (++calls == 3) {
          throw new IllegalStateException("the relay's process died right after the broker stored the batch");
        }
      }

      @Override
      public void close() {
      }
    };
    EventRelay first = new EventRelay(store, dies, Clock.systemUTC(), FAST, new Random(3)).start();
    await(() -> broker.stored().size() == 60 || store.eventBacklog().pending() == 0, () -> "the first relay published");
    first.close();
    try (EventRelay second = new EventRelay(store, broker.publisher(), Clock.systemUTC(), FAST, new Random(4)).start()) {
      await(() -> store.eventBacklog().pending() == 0, () -> "the outbox is empty");
    }
    assertEachOnceInOrder(60);
    assertThat(broker.duplicatesDropped()).as("re-published and dropped by id").isGreaterThan(0);
  }

  @Test
  void oneRelayLeadsAndAnotherTakesOverWhenItStops() throws Exception {
    EventRelay a = new EventRelay(store, broker.publisher(), Clock.systemUTC(), FAST, new Random(5)).start();
    await(a::leading, () -> "the first relay leads");
    try (EventRelay b = new EventRelay(store, broker.publisher(), Clock.systemUTC(), FAST, new Random(6)).start()) {
      Thread.sleep(100);
      assertThat(b.leading()).as("stands by").isFalse();
      a.close();
      work("t-handover", 5);
      await(() -> store.eventBacklog().pending() == 0, () -> "the second relay published");
      assertThat(b.leading()).isTrue();
    }
    assertEachOnceInOrder(10);
  }
}
