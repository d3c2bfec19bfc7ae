package org.civicsync.server.store.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.projection.ProjectionRebuilder;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.MovedRecord;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.PulledRecord;
import org.civicsync.server.store.ReadTx;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.TestDevices;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.flywaydb.core.Flyway;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * What the contract suite cannot see from above the SPI: round trips per push, restarts,
 * rollbacks, time precision, failures. The store here has a pool of ONE connection, so any method
 * that forgot to hand its connection back makes every later test time out.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PostgresServerStoreBehaviourTest {
  private static final CollectionCatalog CATALOG = CollectionCatalog.of(CollectionCatalog.builtInDefinitions());

  /** Statements of a push of new, in-order changes that fall under no rule (see below). */
  private static final int PLAIN_PUSH = 12;

  private final String schema = TestDatabases.freshSchema();
  private PostgresConfig config;
  private PostgresServerStore store;
  /** Enrolls the devices tests push with, through a store of its own (see {@link #open}). */
  private PostgresServerStore setupStore;
  private TenancyService tenancy;
  private Fixtures fx;

  @BeforeAll
  void open() {
    config = PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(schema).withMaxPoolSize(1);
    store = PostgresServerStore.open(config);
    // The tenancy service reads users and org units through the store while its write transaction
    // holds a connection, which a pool of one cannot give; enrolling is not what is tested here.
    setupStore = PostgresServerStore.open(config.withMaxPoolSize(2));
    tenancy = new TenancyService(setupStore, Clock.systemUTC());
  }

  @AfterAll
  void drop() {
    store.close();
    setupStore.close();
    TestDatabases.dropSchema(schema);
  }

  @BeforeEach
  void fixtures() {
    fx = new Fixtures(System.nanoTime());
  }

  /**
   * A push whose changes fall under no rule (here: appointments created cancelled, which the
   * capacity rule does not count) costs the same statements for one mutation as for a thousand:
   * the counter lock, findLogged, findHeld (some mutation was not in the log), deviceQueue (the
   * device's progress and held mutations, one round trip), findRecords, appendLog, putRecords,
   * advanceHead, setDeviceProgress, markPushed, appendAudit. That is {@value #PLAIN_PUSH}: 7 before
   * the hold queue, plus findHeld, deviceQueue and setDeviceProgress, plus the audit entry of the
   * transaction (issue 4; the counter lock reads the audit head, so that costs nothing more), plus
   * the one NOTIFY that tells the live streams of every instance (issue 7). putClaims writes
   * nothing here: records the push created hold no claims before it, and these take none.
   */
  @Test
  void aPushCostsTheSameHandfulOfStatementsWhetherItCarriesOneMutationOrAThousand() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, TestDevices.signed(device, List.of(cancelledBooking())));
      int forOne = executed.get();

      List<Mutation> thousand = new ArrayList<>();
      for (int i = 0; i < 1000; i++) {
        thousand.add(cancelledBooking());
      }
      executed.set(0);
      List<MutationResult> results = push.push(device, TestDevices.signed(device, thousand)).results();
      int forThousand = executed.get();

      assertThat(results).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(forOne).as("statements for a push of one").isEqualTo(PLAIN_PUSH);
      assertThat(forThousand).as("statements for a push of 1,000").isEqualTo(forOne);
    }
  }

  /**
   * Changes a rule counts add only the rule's reads, one statement each for the whole push: the
   * holders of the claims its changes newly take, and the limits the rule reads from another
   * collection (a clinic's slot capacity); and one statement writing the claims of the whole push
   * (an insert for the records it created, a replacement for those it changed).
   */
  @Test
  void bookingsCheckTheirSlotsInOneLookupPerPush() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, TestDevices.signed(device, List.of(cancelledBooking())));
      int plain = executed.get();

      executed.set(0);
      push.push(device, TestDevices.signed(device, List.of(fx.create(fx.uuid()))));
      int forOne = executed.get();

      List<Mutation> hundred = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        hundred.add(fx.create(fx.uuid()));
      }
      executed.set(0);
      List<MutationResult> results = push.push(device, TestDevices.signed(device, hundred)).results();
      int forHundred = executed.get();

      // An update that leaves the slot alone keeps its claim: no lookup.
      UUID booked = hundred.get(0).recordId();
      executed.set(0);
      MutationResult phone = push.push(device, TestDevices.signed(device, List.of(fx.update(booked, 1, Fixtures.patch("patientPhone", "+94770000002")))))
          .results().get(0);
      int forUpdate = executed.get();

      assertThat(results).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(phone.status()).isEqualTo(MutationStatus.APPLIED);
      // Slots are looked up together (one statement), and so are the clinics' slot capacities
      // (one more, whatever the number of clinics: it was one per clinic).
      long clinics = hundred.stream().map(m -> m.data().path("clinicId").asText()).distinct().count();
      assertThat(clinics).as("the bookings span many clinics").isGreaterThan(10);
      assertThat(forOne).as("statements for one booking").isEqualTo(plain + 3);
      assertThat(forHundred).as("statements for 100 bookings").isEqualTo(plain + 3);
      assertThat(forUpdate).as("statements for an update keeping the slot: its claims replaced, no lookup").isEqualTo(plain + 1);
    }
  }

  /**
   * Stale changes are the one place a push reads per mutation: each looks up its base version
   * (one indexed statement), unless an earlier mutation of the same push produced it. Whatever
   * number of them are parked, the inbox items are one statement.
   */
  @Test
  void staleChangesCostOneLookupEachAndTheConflictsOfAPushOneInsert() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, TestDevices.signed(device, List.of(fx.create(fx.uuid()))));
      int forOne = executed.get();

      List<UUID> ids = new ArrayList<>();
      List<Mutation> creates = new ArrayList<>();
      List<Mutation> updates = new ArrayList<>();
      for (int i = 0; i < 10; i++) {
        UUID id = fx.uuid();
        ids.add(id);
        creates.add(fx.create(id));
        updates.add(fx.update(id, 1, Fixtures.patch("patientPhone", "+9477000" + (1000 + i))));
      }
      push.push(device, TestDevices.signed(device, creates));
      push.push(device, TestDevices.signed(device, updates));

      List<Mutation> stale = new ArrayList<>();
      for (int i = 0; i < ids.size(); i++) {
        stale.add(fx.update(ids.get(i), 1, Fixtures.patch("patientPhone", "+9477999" + (1000 + i))));
      }
      stale.add(fx.create(fx.uuid()));
      executed.set(0);
      List<MutationResult> results = push.push(device, TestDevices.signed(device, stale)).results();
      int forStale = executed.get();

      assertThat(results.subList(0, 10)).allMatch(r -> r.status() == MutationStatus.CONFLICT);
      assertThat(results.get(10).status()).isEqualTo(MutationStatus.APPLIED);
      assertThat(forStale).as("statements for a push of 10 parked stale changes and a create").isEqualTo(forOne + 10 + 1);
      assertThat(counted.inbox(device.tenantId(), Optional.of("open"), Optional.of("conflict"), Optional.empty(), 100))
          .extracting(InboxItem::id)
          .containsExactlyInAnyOrderElementsOf(results.subList(0, 10).stream().map(MutationResult::conflictId).toList());
    }
  }

  @Test
  void claimsAreReplacedPerRecordReleasedByAnEmptyListAndKeptApartByTenantAndCollection() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    Claim slotA = new Claim("appointments/one-booking-per-slot", "a".repeat(40));
    Claim slotB = new Claim("appointments/one-booking-per-slot", "b".repeat(40));
    Claim other = new Claim("appointments/another-rule", "a".repeat(40));
    UUID r1 = fx.uuid();
    UUID r2 = fx.uuid();
    UUID r3 = fx.uuid();
    RecordKey k1 = new RecordKey("appointments", r1);
    RecordKey k2 = new RecordKey("appointments", r2);
    RecordKey k3 = new RecordKey("appointments", r3);

    store.write(tenant, tx -> {
      tx.putClaims(Map.of(k1, List.of(slotA, other), k2, List.of(slotA), k3, List.of(slotB, slotB)));
      return null;
    });
    assertThat(holders(tenant, slotA)).containsExactlyInAnyOrder(r1, r2);
    assertThat(holders(tenant, other)).as("same key under another rule").containsExactly(r1);
    assertThat(holders(tenant, slotB)).as("a claim listed twice is held once").containsExactly(r3);

    // r1 keeps one claim, drops one and takes one; r2 and r3, not in the map, keep theirs.
    store.write(tenant, tx -> {
      tx.putClaims(Map.of(k1, List.of(other, slotB)));
      return null;
    });
    assertThat(holders(tenant, slotA)).containsExactly(r2);
    assertThat(holders(tenant, slotB)).containsExactlyInAnyOrder(r1, r3);
    assertThat(holders(tenant, other)).containsExactly(r1);

    // An empty list releases everything the record holds, and only that record's.
    store.write(tenant, tx -> {
      tx.putClaims(Map.of(k2, List.of(), k3, List.of()));
      return null;
    });
    assertThat(holders(tenant, slotA)).isEmpty();
    assertThat(holders(tenant, slotB)).containsExactly(r1);

    // The same record id in another collection is another record.
    store.write(tenant, tx -> {
      tx.putClaims(Map.of(new RecordKey("subsidy_claims", r1), List.of()));
      return null;
    });
    assertThat(holders(tenant, slotB)).containsExactly(r1);

    // Another tenant sees none of these, and its writes to the same record ids touch only its own.
    assertThat(holders(otherTenant, slotB)).isEmpty();
    store.write(otherTenant, tx -> {
      tx.putClaims(Map.of(k1, List.of(slotA)));
      return null;
    });
    store.write(otherTenant, tx -> {
      tx.putClaims(Map.of(k1, List.of(slotB)));
      return null;
    });
    assertThat(holders(otherTenant, slotB)).containsExactly(r1);
    assertThat(holders(otherTenant, slotA)).isEmpty();
    assertThat(holders(tenant, slotB)).containsExactly(r1);
    assertThat(holders(tenant, other)).containsExactly(r1);
  }

  /**
   * The claims of a record the transaction created are inserted without the replacing statement
   * (nothing can be held under a record that had no row); a second putClaims for it in the same
   * transaction replaces them as for any record, and a record whose row existed is replaced too.
   */
  @Test
  void claimsOfRecordsCreatedInTheTransactionAreInsertedOnceAndReplacedByALaterPut() {
    String tenant = newTenant();
    Claim slotA = new Claim("appointments/one-booking-per-slot", "e".repeat(40));
    Claim slotB = new Claim("appointments/one-booking-per-slot", "f".repeat(40));
    Claim other = new Claim("appointments/another-rule", "e".repeat(40));
    RecordKey old = new RecordKey("appointments", fx.uuid());
    store.write(tenant, tx -> {
      tx.putRecords(List.of(new StoredRecord(old.collection(), old.recordId(), 1, false, fx.appointment(), 1, Instant.now(), Map.of(),
          null)));
      tx.putClaims(Map.of(old, List.of(slotA)));
      tx.advanceHead(1);
      return null;
    });

    RecordKey born = new RecordKey("appointments", fx.uuid());
    RecordKey bornToo = new RecordKey("appointments", fx.uuid());
    store.write(tenant, tx -> {
      assertThat(tx.findRecords(List.of(old, born, bornToo))).containsOnlyKeys(old);
      tx.putRecords(List.of(
          new StoredRecord(born.collection(), born.recordId(), 1, false, fx.appointment(), 2, Instant.now(), Map.of(), null),
          new StoredRecord(bornToo.collection(), bornToo.recordId(), 1, false, fx.appointment(), 3, Instant.now(), Map.of(), null),
          new StoredRecord(old.collection(), old.recordId(), 2, false, fx.appointment(), 4, Instant.now(), Map.of(), null)));
      tx.putClaims(Map.of(born, List.of(slotB, slotB, other), bornToo, List.of(slotA), old, List.of()));
      assertThat(tx.claimHolders(List.of(slotA, slotB, other)))
          .containsEntry(slotA, Set.of(bornToo.recordId())).containsEntry(slotB, Set.of(born.recordId()))
          .containsEntry(other, Set.of(born.recordId()));
      // Put again in the same transaction: replaced, not inserted twice.
      tx.putClaims(Map.of(born, List.of(slotB), bornToo, List.of()));
      tx.advanceHead(4);
      return null;
    });
    assertThat(holders(tenant, slotB)).containsExactly(born.recordId());
    assertThat(holders(tenant, other)).isEmpty();
    assertThat(holders(tenant, slotA)).isEmpty();
  }

  @Test
  void claimsOfAFailedTransactionAreRolledBack() {
    String tenant = newTenant();
    Claim slot = new Claim("appointments/one-booking-per-slot", "c".repeat(40));
    UUID kept = fx.uuid();
    store.write(tenant, tx -> {
      tx.putClaims(Map.of(new RecordKey("appointments", kept), List.of(slot)));
      return null;
    });
    RuntimeException boom = new UnsupportedOperationException("the service's own failure");
    Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> store.write(tenant, tx -> {
      tx.putClaims(Map.of(new RecordKey("appointments", kept), List.of(), new RecordKey("appointments", fx.uuid()), List.of(slot)));
      throw boom;
    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(holders(tenant, slot)).containsExactly(kept);
  }

  @Test
  void clearRecordsClearsEveryClaimOfTheTenantAndNoOtherTenants() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    Claim slot = new Claim("appointments/one-booking-per-slot", "d".repeat(40));
    Claim farmer = new Claim("subsidy_claims/one-open-claim", "d".repeat(40));
    UUID id = fx.uuid();
    for (String t : List.of(tenant, otherTenant)) {
      store.write(t, tx -> {
        tx.putClaims(Map.of(new RecordKey("appointments", id), List.of(slot), new RecordKey("subsidy_claims", fx.uuid()), List.of(farmer)));
        return null;
      });
    }
    Set<UUID> seenInside = store.write(tenant, tx -> {
      tx.clearRecords();
      return tx.claimHolders(List.of(slot)).get(slot);
    });
    assertThat(seenInside).isEmpty();
    assertThat(holders(tenant, slot)).isEmpty();
    assertThat(holders(tenant, farmer)).isEmpty();
    assertThat(holders(otherTenant, slot)).containsExactly(id);
    assertThat(holders(otherTenant, farmer)).hasSize(1);
  }

  /** A rebuild of a big tenant writes its claims in statements of {@link Sql#CHUNK} records. */
  @Test
  void claimsOfMoreRecordsThanOneStatementTakesAreAllWritten() {
    String tenant = newTenant();
    Claim shared = new Claim("appointments/one-booking-per-slot", "e".repeat(40));
    Map<RecordKey, List<Claim>> claims = new java.util.HashMap<>();
    for (int i = 0; i < Sql.CHUNK + 7; i++) {
      claims.put(new RecordKey("appointments", UUID.randomUUID()), List.of(shared));
    }
    store.write(tenant, tx -> {
      tx.putClaims(claims);
      return null;
    });
    assertThat(holders(tenant, shared)).hasSize(Sql.CHUNK + 7)
        .containsExactlyInAnyOrderElementsOf(claims.keySet().stream().map(RecordKey::recordId).toList());
  }

  @Test
  void findVersionReadsTheAfterStateOfThatRecordsEntryAtThatVersionAndNothingElse() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID id = fx.uuid();
    RecordKey key = new RecordKey("appointments", id);
    Instant t = Instant.parse("2026-03-01T10:15:30.123456Z");
    RecordState v1 = new RecordState(1, false, fx.appointment(), t, Map.of("status", fx.hlc()));
    RecordState v2 = new RecordState(2, false, fx.appointment(), t.plusSeconds(1), Map.of("status", fx.hlc()));
    RecordState v2Again = new RecordState(2, true, null, t.plusSeconds(3), Map.of());
    RecordState otherCollection = new RecordState(2, false, fx.appointment(), t.plusSeconds(2), Map.of());
    store.write(tenant, tx -> {
      tx.appendLog(List.of(
          entry(1, "appointments", id, v1),
          entry(2, "appointments", id, v2),
          entry(3, "subsidy_claims", id, otherCollection),
          entry(4, "appointments", id, null),
          // Cannot happen (versions only increase); if it ever did, the later entry stands.
          entry(5, "appointments", id, v2Again)));
      tx.advanceHead(5);
      return null;
    });
    store.write(otherTenant, tx -> {
      tx.appendLog(List.of(entry(1, "appointments", id, new RecordState(3, false, fx.appointment(), t, Map.of()))));
      tx.advanceHead(1);
      return null;
    });
    store.write(tenant, tx -> {
      assertThat(tx.findVersion(key, 1)).contains(v1);
      assertThat(tx.findVersion(key, 2)).contains(v2Again);
      assertThat(tx.findVersion(new RecordKey("subsidy_claims", id), 2)).contains(otherCollection);
      assertThat(tx.findVersion(key, 3)).as("only in another tenant").isEmpty();
      assertThat(tx.findVersion(new RecordKey("appointments", fx.uuid()), 1)).isEmpty();
      return null;
    });
  }

  @Test
  void theInboxListsNewestFirstAndFiltersByStatusKindAndCollection() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456Z");
    InboxItem a = inboxItem("appointments", t, "open", "conflict");
    InboxItem b = inboxItem("appointments", t.plusSeconds(1), "open", "rejected");
    InboxItem c = inboxItem("subsidy_claims", t.plusSeconds(2), "open", "conflict");
    InboxItem d = inboxItem("appointments", t.plusSeconds(3), "resolved", "conflict");
    // Opened by one push, so at the same instant: the id orders them.
    InboxItem e = withId(inboxItem("appointments", t.plusSeconds(4), "open", "forced"), "00000000-0000-4000-8000-000000000001");
    InboxItem f = withId(inboxItem("appointments", t.plusSeconds(4), "open", "forced"), "00000000-0000-4000-8000-000000000002");
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(f, a, c, e, b, d));
      return null;
    });
    store.write(otherTenant, tx -> {
      tx.openInboxItems(List.of(inboxItem("appointments", t.plusSeconds(9), "open", "conflict")));
      return null;
    });
    Optional<String> none = Optional.empty();

    assertThat(store.inbox(tenant, none, none, none, 100)).containsExactly(e, f, d, c, b, a);
    assertThat(store.inbox(tenant, none, none, none, 2)).containsExactly(e, f);
    assertThat(store.inbox(tenant, none, none, none, 0)).isEmpty();
    assertThat(store.inbox(tenant, Optional.of("open"), none, none, 100)).containsExactly(e, f, c, b, a);
    assertThat(store.inbox(tenant, Optional.of("resolved"), none, none, 100)).containsExactly(d);
    assertThat(store.inbox(tenant, none, Optional.of("conflict"), none, 100)).containsExactly(d, c, a);
    assertThat(store.inbox(tenant, none, none, Optional.of("subsidy_claims"), 100)).containsExactly(c);
    assertThat(store.inbox(tenant, Optional.of("open"), Optional.of("conflict"), Optional.of("appointments"), 100)).containsExactly(a);
    assertThat(store.inbox("no-such-tenant", none, none, none, 100)).isEmpty();
    assertThatThrownBy(() -> store.inbox(tenant, none, none, none, -1)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void openingAnInboxItemTwiceIsABugAndRollsBack() {
    String tenant = newTenant();
    InboxItem item = inboxItem("appointments", Instant.now(), "open", "conflict");
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(item));
      return null;
    });
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.openInboxItems(List.of(inboxItem("appointments", Instant.now(), "open", "conflict"), item));
      return null;
    })).isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
    assertThat(store.inbox(tenant, Optional.empty(), Optional.empty(), Optional.empty(), 10)).hasSize(1);
  }

  /**
   * A database written by schema version 1 has no after-states. The migration to version 2 gives
   * the entry that produced each record's current row that row's state, so a rebuild from the
   * log (which now uses after-states only) still reproduces every record.
   */
  @Test
  void migratingAVersion1DatabaseKeepsEveryRecordThroughARebuild() throws Exception {
    String old = TestDatabases.freshSchema();
    try {
      PGSimpleDataSource raw = new PGSimpleDataSource();
      raw.setURL(TestDatabases.jdbcUrl());
      Flyway.configure(getClass().getClassLoader()).dataSource(raw).schemas(old).locations(PostgresServerStore.MIGRATIONS)
          .target("1").load().migrate();
      String tenant = "v1";
      UUID updated = fx.uuid();
      UUID deleted = fx.uuid();
      UUID device = UUID.randomUUID();
      Instant t = Instant.parse("2026-03-01T10:15:30.123456Z");
      ObjectNode first = fx.appointment();
      ObjectNode latest = first.deepCopy().put("patientPhone", "+94770000001").put("weightKg", 12.50);
      latest.putObject("nested").put("a", 1).putArray("list").add("x").add(2.0);
      try (Connection c = raw.getConnection(); Statement st = c.createStatement()) {
        st.execute("SET search_path TO " + old);
        st.execute("INSERT INTO tenants VALUES ('v1', now())");
        st.execute("INSERT INTO tenant_heads VALUES ('v1', 5)");
        v1Log(c, 1, device, v1Mutation(updated, MutationOp.CREATE, 0, first), MutationResult.applied(fx.uuid(), updated, 1), t);
        v1Log(c, 2, device, v1Mutation(updated, MutationOp.UPDATE, 1, fx.appointment()), MutationResult.applied(fx.uuid(), updated, 2), t);
        v1Log(c, 3, device, v1Mutation(deleted, MutationOp.CREATE, 0, fx.appointment()), MutationResult.applied(fx.uuid(), deleted, 1), t);
        v1Log(c, 4, device, v1Mutation(deleted, MutationOp.DELETE, 1, null), MutationResult.applied(fx.uuid(), deleted, 2), t);
        v1Log(c, 5, device, v1Mutation(updated, MutationOp.UPDATE, 1, fx.appointment()),
            MutationResult.rejected(fx.uuid(), updated, ErrorDetail.of(ErrorCode.VERSION_CONFLICT, "stale")), t);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO records (tenant_id, collection, record_id, version, deleted, data,"
            + " seq, updated_at) VALUES ('v1', 'appointments', ?, 2, ?, ?::jsonb, ?, ?)")) {
          ps.setObject(1, updated);
          ps.setBoolean(2, false);
          ps.setString(3, latest.toString());
          ps.setLong(4, 2);
          ps.setObject(5, Sql.timestamp(t.plusSeconds(1)));
          ps.executeUpdate();
          ps.setObject(1, deleted);
          ps.setBoolean(2, true);
          ps.setString(3, null);
          ps.setLong(4, 4);
          ps.setObject(5, Sql.timestamp(t.plusSeconds(2)));
          ps.executeUpdate();
        }
      }

      try (PostgresServerStore migrated = PostgresServerStore.open(PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(old))) {
        List<StoredRecord> before = projection(migrated, tenant);
        assertThat(before).extracting(StoredRecord::fieldHlc).containsOnly(Map.of());
        List<LoggedMutation> log = new ArrayList<>();
        migrated.write(tenant, tx -> {
          tx.forEachLogged(log::add);
          return null;
        });
        assertThat(log).extracting(LoggedMutation::after).containsExactly(
            null, before.get(0).state(), null, before.get(1).state(), null);
        assertThat(before.get(0).state().updatedAt()).isEqualTo(t.plusSeconds(1));
        assertThat(before.get(0).data()).isEqualTo(latest);
        Optional<RecordState> atVersion2 = migrated.write(tenant, tx -> tx.findVersion(new RecordKey("appointments", updated), 2));
        assertThat(atVersion2).contains(before.get(0).state());

        // Rows written before schema version 6 have no scope key; SQL cannot know a collection's
        // scope field, so the rebuild is what fills it in (appointments are scoped by clinic).
        assertThat(before).extracting(StoredRecord::scopeKey).containsOnlyNulls();
        assertThat(new ProjectionRebuilder(migrated, CATALOG).rebuild(tenant)).isEqualTo(2);
        List<StoredRecord> rebuilt = projection(migrated, tenant);
        assertThat(rebuilt).usingRecursiveFieldByFieldElementComparatorIgnoringFields("scopeKey").containsExactlyElementsOf(before);
        assertThat(rebuilt.get(0).scopeKey()).isEqualTo(latest.path("clinicId").asText());
      }
    } finally {
      TestDatabases.dropSchema(old);
    }
  }

  @Test
  void pullFilteredToSeveralCollectionsReturnsOnlyTheirRecordsInSeqOrder() {
    String tenant = newTenant();
    List<StoredRecord> rows = new ArrayList<>();
    String[] collections = {"a", "b", "c"};
    for (int seq = 1; seq <= 9; seq++) {
      rows.add(new StoredRecord(collections[seq % 3], UUID.randomUUID(), 1, false, fx.appointment(), seq, Instant.now(), Map.of(),
          null));
    }
    store.write(tenant, tx -> {
      tx.putRecords(rows);
      tx.advanceHead(9);
      return null;
    });
    PullPage page = store.pull(tenant, PullQuery.all(2, 3, Set.of("a", "c")));
    assertThat(page.records()).extracting(PulledRecord::seq).containsExactly(3L, 5L, 6L);
    assertThat(page.hasMore()).isTrue();
    PullPage rest = store.pull(tenant, PullQuery.all(6, 3, Set.of("a", "c")));
    assertThat(rest.records()).extracting(PulledRecord::seq).containsExactly(8L, 9L);
    assertThat(rest.hasMore()).isFalse();
  }

  @Test
  void aRestartedStoreKeepsEverythingAndReplaysTheFirstResult() {
    Caller.Device device = newDevice();
    Mutation create = fx.create(fx.uuid());
    MutationResult first = new PushService(store, CATALOG, Clock.systemUTC()).push(device, TestDevices.signed(device, List.of(create)))
        .results().get(0);
    long head = store.head(device.tenantId());

    try (PostgresServerStore reopened = PostgresServerStore.open(config.withMaxPoolSize(2))) {
      MutationResult again = new PushService(reopened, CATALOG, Clock.systemUTC())
          .push(device, TestDevices.signed(device, List.of(create))).results().get(0);
      assertThat(again).isEqualTo(first.asReplay());
      assertThat(reopened.head(device.tenantId())).isEqualTo(head);
      assertThat(reopened.pull(device.tenantId(), PullQuery.all(0, 10, Set.of())).records()).hasSize(1);
    }
  }

  @Test
  void writingToAnUnknownTenantIsRefusedAndHoldsNoConnection() {
    for (int i = 0; i < 3; i++) {
      assertThatThrownBy(() -> store.write("no-such-tenant", tx -> tx.head())).isInstanceOf(IllegalArgumentException.class);
    }
    store.ping();
  }

  @Test
  void anExceptionFromTheWorkRollsEverythingBackAndPropagatesAsItIs() {
    String tenant = newTenant();
    RuntimeException boom = new UnsupportedOperationException("the service's own failure");
    Mutation m = fx.create(fx.uuid());
    RecordState after = new RecordState(1, false, m.data(), Instant.now(), Map.of("status", m.hlc()));
    Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> store.write(tenant, tx -> {
      tx.appendLog(List.of(new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
          Instant.now(), after)));
      tx.putRecords(List.of(StoredRecord.of(new RecordKey("appointments", m.recordId()), after, 1)));
      tx.openInboxItems(List.of(inboxItem("appointments", Instant.now(), "open", "conflict")));
      tx.advanceHead(1);
      throw boom;
    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(store.head(tenant)).isZero();
    assertThat(store.pull(tenant, PullQuery.all(0, 10, Set.of())).records()).isEmpty();
    assertThat(logged(tenant, m.mutationId())).isEmpty();
    Optional<RecordState> atVersion1 = store.write(tenant, tx -> tx.findVersion(new RecordKey("appointments", m.recordId()), 1));
    assertThat(atVersion1).isEmpty();
    assertThat(store.inbox(tenant, Optional.empty(), Optional.empty(), Optional.empty(), 10)).isEmpty();
  }

  @Test
  void aConstraintViolationIsReportedAsABugNotAsAnOutageAndRolledBack() {
    String tenant = newTenant();
    Mutation m = fx.create(fx.uuid());
    LoggedMutation entry = new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
        Instant.now(), null);
    LoggedMutation sameId = new LoggedMutation(2, m, "h", entry.deviceId(), entry.result(), entry.receivedAt(), null);
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.appendLog(List.of(entry, sameId));
      return null;
    })).isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
    assertThat(logged(tenant, m.mutationId())).isEmpty();
  }

  @Test
  void instantsAreKeptToTheMicrosecondAndReadBackTheSameWhereverTheyAreStored() {
    String tenant = newTenant();
    Instant withNanos = Instant.parse("2026-03-01T10:15:30.123456789Z");
    Instant micros = withNanos.truncatedTo(ChronoUnit.MICROS);
    Mutation m = fx.create(fx.uuid());
    RecordKey key = new RecordKey("appointments", m.recordId());
    RecordState after = new RecordState(1, false, m.data(), withNanos, Map.of("status", m.hlc(), "notes", fx.hlc()));
    store.write(tenant, tx -> {
      tx.appendLog(List.of(new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
          withNanos, after)));
      tx.putRecords(List.of(StoredRecord.of(key, after, 1)));
      tx.openInboxItems(List.of(InboxItem.open(UUID.randomUUID(), "conflict", "appointments", m.recordId(), null, null,
          fx.appointment(), withNanos)));
      tx.advanceHead(1);
      return null;
    });
    StoredRecord record = projection(store, tenant).get(0);
    LoggedMutation logged = logged(tenant, m.mutationId()).get(m.mutationId());
    List<LoggedMutation> streamed = new ArrayList<>();
    Optional<RecordState> atVersion1 = store.write(tenant, tx -> {
      tx.forEachLogged(streamed::add);
      return tx.findVersion(key, 1);
    });
    RecordState expected = new RecordState(1, false, m.data(), micros, after.fieldHlc());
    assertThat(record.updatedAt()).isEqualTo(micros);
    assertThat(record.state()).isEqualTo(expected);
    assertThat(logged.receivedAt()).isEqualTo(micros);
    assertThat(logged.after()).isEqualTo(expected);
    assertThat(streamed).extracting(LoggedMutation::receivedAt).containsExactly(micros);
    assertThat(streamed).extracting(LoggedMutation::after).containsExactly(expected);
    assertThat(atVersion1).contains(expected);
    assertThat(logged.mutation()).isEqualTo(m);
    assertThat(store.inbox(tenant, Optional.empty(), Optional.empty(), Optional.empty(), 10))
        .extracting(InboxItem::createdAt).containsExactly(micros);
  }

  /**
   * A log entry's note (what the server adds to a change it originated) is written in the same
   * statement as the rest of the entry and read back equal by findLogged and forEachLogged; an
   * entry without one (a device's own mutation) reads back without one, next to one that has it.
   */
  @Test
  void aLogEntrysNoteIsReadBackAsWrittenAndAMissingNoteStaysMissing() {
    String tenant = newTenant();
    Mutation own = fx.create(fx.uuid());
    Mutation resolved = fx.create(fx.uuid());
    ObjectNode note = Json.mapper().createObjectNode().put("inboxItem", UUID.randomUUID().toString())
        .put("resolution", "takeClient").put("comment", "patient confirmed \"new\" number – ünïcode");
    store.write(tenant, tx -> {
      tx.appendLog(List.of(
          new LoggedMutation(1, own, "h", UUID.randomUUID(), MutationResult.applied(own.mutationId(), own.recordId(), 1),
              Instant.now(), null),
          new LoggedMutation(2, resolved, "h", UUID.randomUUID(),
              MutationResult.applied(resolved.mutationId(), resolved.recordId(), 1), Instant.now(), null, note)));
      tx.advanceHead(2);
      return null;
    });
    Map<UUID, LoggedMutation> found =
        store.write(tenant, tx -> tx.findLogged(List.of(own.mutationId(), resolved.mutationId())));
    List<LoggedMutation> streamed = new ArrayList<>();
    store.write(tenant, tx -> {
      tx.forEachLogged(streamed::add);
      return null;
    });
    assertThat(found.get(own.mutationId()).note()).isNull();
    assertThat(found.get(resolved.mutationId()).note()).isEqualTo(note);
    assertThat(streamed).extracting(LoggedMutation::note).containsExactly(null, note);
  }

  @Test
  void redeemingAnEnrollmentCodeReturnsItAsItWasBeforeThatUse() {
    String tenant = newTenant();
    Instant now = Instant.now();
    String hash = "hash-" + UUID.randomUUID();
    store.write(tenant, tx -> {
      tx.insertEnrollmentCode(new EnrollmentCodeRow(hash, tenant, null, now, now.plusSeconds(60), 2, 0, "amara"));
      return null;
    });
    assertThat(redeem(tenant, hash, now)).get().satisfies(c -> {
      assertThat(c.uses()).isZero();
      assertThat(c.label()).isNull();
      assertThat(c.userId()).isEqualTo("amara");
    });
    assertThat(redeem(tenant, hash, now)).get().extracting(EnrollmentCodeRow::uses).isEqualTo(1);
    assertThat(redeem(tenant, hash, now)).as("used up").isEmpty();
    assertThat(store.findEnrollmentCode(hash)).get().extracting(EnrollmentCodeRow::uses).isEqualTo(2);
  }

  /** A write transaction redeems only its own tenant's codes, and an expired code not at all. */
  @Test
  void aCodeIsRedeemedOnlyInItsOwnTenantAndOnlyBeforeItExpires() {
    String tenant = newTenant();
    String other = newTenant();
    Instant now = Instant.parse("2026-03-01T10:15:30.123456Z");
    String hash = "hash-" + UUID.randomUUID();
    store.write(tenant, tx -> {
      tx.insertEnrollmentCode(new EnrollmentCodeRow(hash, tenant, "week", now, now.plusSeconds(60), 5, 0, "amara"));
      return null;
    });
    assertThat(redeem(other, hash, now)).as("another tenant's code").isEmpty();
    assertThat(redeem(tenant, hash, now.plusSeconds(60))).as("expired").isEmpty();
    assertThat(store.findEnrollmentCode(hash)).contains(
        new EnrollmentCodeRow(hash, tenant, "week", now, now.plusSeconds(60), 5, 0, "amara"));
    assertThatThrownBy(() -> store.write(other, tx -> {
      tx.insertEnrollmentCode(new EnrollmentCodeRow("hash-" + UUID.randomUUID(), tenant, null, now, now, 1, 0, null));
      return null;
    })).isInstanceOf(IllegalArgumentException.class);
  }

  private Optional<EnrollmentCodeRow> redeem(String tenant, String hash, Instant now) {
    return store.write(tenant, tx -> tx.redeemEnrollmentCode(hash, now));
  }

  @Test
  void creatingOneTenantFromManyThreadsAtOnceSucceedsExactlyOnce() throws Exception {
    String id = "race-" + UUID.randomUUID();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<Boolean>> fs = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      fs.add(pool.submit(() -> {
        go.await();
        return store.createTenant(new TenantRow(id, Instant.now()));
      }));
    }
    go.countDown();
    int created = 0;
    for (Future<Boolean> f : fs) {
      created += f.get(30, TimeUnit.SECONDS) ? 1 : 0;
    }
    pool.shutdown();
    assertThat(created).isEqualTo(1);
    assertThat(store.head(id)).isZero();
    long lockedHead = store.write(id, tx -> tx.head());
    assertThat(lockedHead).isZero();
  }

  @Test
  void anUnreachableDatabaseIsReportedAsUnavailableAtOpen() {
    assertThatThrownBy(() -> PostgresServerStore.open(PostgresConfig.of("jdbc:postgresql://127.0.0.1:1/none?connectTimeout=2")))
        .isInstanceOf(StoreUnavailableException.class)
        .hasMessageContaining("127.0.0.1:1");
  }

  @Test
  void aClosedStoreReportsItselfUnavailable() {
    PostgresServerStore other = PostgresServerStore.open(config);
    other.ping();
    other.close();
    assertThatThrownBy(other::ping).isInstanceOf(StoreUnavailableException.class);
    assertThatThrownBy(() -> other.head("x")).isInstanceOf(StoreUnavailableException.class);
  }

  // ---------------------------------------------------------------- inbox resolution and outcomes

  @Test
  void anInboxItemIsFoundAndResolvedWithItsResolutionAndTimeKeptToTheMicrosecond() {
    String tenant = newTenant();
    Instant created = Instant.parse("2026-03-01T10:15:30.123456Z");
    Instant resolvedAtNanos = Instant.parse("2026-03-02T08:00:00.987654321Z");
    InboxItem item = InboxItem.open(UUID.randomUUID(), "conflict", "appointments", fx.uuid(), fx.uuid(), UUID.randomUUID(),
        inboxItem("appointments", created, "open", "conflict").detail(), created);
    InboxItem untouched = inboxItem("appointments", created.plusSeconds(1), "open", "rejected");
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(item, untouched));
      return null;
    });

    Optional<InboxItem> found = found(store, tenant, item.id());
    assertThat(found).contains(item);
    assertThat(found.get().resolvedAt()).isNull();
    assertThat(found.get().resolution()).isNull();
    assertThat(found(store, tenant, fx.uuid())).isEmpty();

    ObjectNode resolution = resolution("takeClient");
    Optional<InboxItem> seenInside = store.write(tenant, tx -> {
      tx.resolveInboxItem(item.id(), resolution, resolvedAtNanos);
      return tx.findInboxItem(item.id());
    });
    InboxItem expected = new InboxItem(item.id(), item.kind(), "resolved", item.collection(), item.recordId(), item.mutationId(),
        item.deviceId(), item.detail(), item.createdAt(), resolvedAtNanos.truncatedTo(ChronoUnit.MICROS), resolution);
    assertThat(seenInside).as("read back in the same transaction").contains(expected);
    assertThat(found(store, tenant, item.id())).contains(expected);
    assertThat(store.inbox(tenant, Optional.of("resolved"), Optional.empty(), Optional.empty(), 10)).containsExactly(expected);
    assertThat(store.inbox(tenant, Optional.of("open"), Optional.empty(), Optional.empty(), 10)).containsExactly(untouched);
  }

  @Test
  void anItemOpenedAlreadyResolvedReadsBackWithItsResolution() {
    String tenant = newTenant();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456789Z");
    InboxItem open = inboxItem("appointments", t, "open", "conflict");
    InboxItem resolved = new InboxItem(UUID.randomUUID(), "conflict", "resolved", "appointments", fx.uuid(), null, null,
        open.detail(), t, t.plusSeconds(5), resolution("keepServer"));
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(open, resolved));
      return null;
    });
    InboxItem micros = new InboxItem(resolved.id(), resolved.kind(), resolved.status(), resolved.collection(), resolved.recordId(),
        null, null, resolved.detail(), t.truncatedTo(ChronoUnit.MICROS), t.plusSeconds(5).truncatedTo(ChronoUnit.MICROS),
        resolved.resolution());
    assertThat(found(store, tenant, resolved.id())).contains(micros);
    assertThat(store.inbox(tenant, Optional.of("resolved"), Optional.empty(), Optional.empty(), 10)).containsExactly(micros);
  }

  @Test
  void anotherTenantNeitherFindsNorResolvesAnInboxItem() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    InboxItem item = inboxItem("appointments", Instant.parse("2026-03-01T10:15:30.123456Z"), "open", "conflict");
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(item));
      return null;
    });
    assertThat(found(store, otherTenant, item.id())).isEmpty();
    assertThatThrownBy(() -> store.write(otherTenant, tx -> {
      tx.resolveInboxItem(item.id(), resolution("keepServer"), Instant.now());
      return null;
    })).isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
    assertThat(found(store, tenant, item.id())).contains(item);
    assertThat(store.inbox(otherTenant, Optional.empty(), Optional.empty(), Optional.empty(), 10)).isEmpty();
  }

  @Test
  void theLatestOutcomeOfEachMutationIsTheOneWithTheHighestSeqInItsTenant() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID device = UUID.randomUUID();
    UUID a = fx.uuid();
    UUID b = fx.uuid();
    UUID none = fx.uuid();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456Z");
    MutationResult aFirst = merged(a, 2, "keepServer");
    MutationResult aSecond = merged(a, 3, "takeClient");
    MutationResult aLast = MutationResult.applied(a, fx.uuid(), 4);
    MutationResult bOnly = merged(b, 5, "manual");
    MutationResult aElsewhere = merged(a, 9, "keepServer");
    store.write(tenant, tx -> {
      // Not in seq order: the seq decides, not the order of the rows.
      tx.appendOutcomes(List.of(new OutcomeRow(3, device, aSecond, t), new OutcomeRow(1, device, aFirst, t),
          new OutcomeRow(2, device, bOnly, t)));
      tx.advanceHead(3);
      return null;
    });
    assertThat(latest(tenant, List.of(a, b, none))).isEqualTo(Map.of(a, aSecond, b, bOnly));

    store.write(tenant, tx -> {
      tx.appendOutcomes(List.of(new OutcomeRow(4, device, aLast, t.plusSeconds(1))));
      tx.advanceHead(4);
      return null;
    });
    // Another tenant's later outcome of the same mutation id is its own.
    store.write(otherTenant, tx -> {
      tx.appendOutcomes(List.of(new OutcomeRow(9, device, aElsewhere, t)));
      tx.advanceHead(9);
      return null;
    });
    assertThat(latest(tenant, List.of(a, b, none))).isEqualTo(Map.of(a, aLast, b, bOnly));
    assertThat(latest(tenant, Set.of(b))).isEqualTo(Map.of(b, bOnly));
    assertThat(latest(tenant, List.of())).isEmpty();
    assertThat(latest(otherTenant, List.of(a, b))).isEqualTo(Map.of(a, aElsewhere));
  }

  @Test
  void outcomesAreReadPerDeviceAfterACursorInSeqOrderAPageAtATime() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID d1 = UUID.randomUUID();
    UUID d2 = UUID.randomUUID();
    Instant withNanos = Instant.parse("2026-03-01T10:15:30.123456789Z");
    List<OutcomeRow> rows = new ArrayList<>();
    for (int seq = 1; seq <= 7; seq++) {
      rows.add(new OutcomeRow(seq, seq % 3 == 0 ? d2 : d1, merged(fx.uuid(), seq, "keepServer"), withNanos.plusSeconds(seq)));
    }
    store.write(tenant, tx -> {
      tx.appendOutcomes(List.of(rows.get(6), rows.get(0), rows.get(3), rows.get(2)));
      tx.advanceHead(7);
      return null;
    });
    store.write(tenant, tx -> {
      // A later transaction cannot reuse seqs at or below the head it started from.
      assertThatThrownBy(() -> tx.appendOutcomes(List.of(rows.get(1)))).isInstanceOf(IllegalStateException.class);
      return null;
    });
    store.write(otherTenant, tx -> {
      tx.appendOutcomes(List.of(new OutcomeRow(1, d1, merged(fx.uuid(), 1, "keepServer"), withNanos)));
      tx.advanceHead(1);
      return null;
    });

    List<OutcomeRow> firstPage = store.outcomes(tenant, d1, 0, 2);
    assertThat(firstPage).extracting(OutcomeRow::seq).containsExactly(1L, 4L);
    assertThat(firstPage.get(0)).isEqualTo(new OutcomeRow(1, d1, rows.get(0).result(),
        withNanos.plusSeconds(1).truncatedTo(ChronoUnit.MICROS)));
    assertThat(store.outcomes(tenant, d1, 4, 2)).extracting(OutcomeRow::seq).containsExactly(7L);
    assertThat(store.outcomes(tenant, d1, 7, 2)).isEmpty();
    assertThat(store.outcomes(tenant, d1, 0, 100)).extracting(OutcomeRow::result)
        .containsExactly(rows.get(0).result(), rows.get(3).result(), rows.get(6).result());
    assertThat(store.outcomes(tenant, d2, 0, 100)).extracting(OutcomeRow::seq).containsExactly(3L);
    assertThat(store.outcomes(tenant, d2, 0, 100)).extracting(OutcomeRow::at)
        .containsExactly(withNanos.plusSeconds(3).truncatedTo(ChronoUnit.MICROS));
    assertThat(store.outcomes(tenant, UUID.randomUUID(), 0, 100)).isEmpty();
    assertThat(store.outcomes(tenant, d1, 0, 0)).isEmpty();
    assertThatThrownBy(() -> store.outcomes(tenant, d1, 0, -1)).isInstanceOf(IllegalArgumentException.class);
    assertThat(store.outcomes(otherTenant, d1, 0, 100)).extracting(OutcomeRow::seq).containsExactly(1L);
    assertThat(store.outcomes(otherTenant, d2, 0, 100)).isEmpty();
    assertThat(store.outcomes("no-such-tenant", d1, 0, 100)).isEmpty();
  }

  @Test
  void aFailedTransactionRollsBackItsResolutionAndOutcomes() {
    String tenant = newTenant();
    UUID device = UUID.randomUUID();
    InboxItem item = inboxItem("appointments", Instant.parse("2026-03-01T10:15:30.123456Z"), "open", "conflict");
    store.write(tenant, tx -> {
      tx.openInboxItems(List.of(item));
      return null;
    });
    RuntimeException boom = new UnsupportedOperationException("the service's own failure");
    Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> store.write(tenant, tx -> {
      tx.resolveInboxItem(item.id(), resolution("takeClient"), Instant.now());
      tx.appendOutcomes(List.of(new OutcomeRow(1, device, merged(item.mutationId(), 2, "takeClient"), Instant.now())));
      tx.advanceHead(1);
      throw boom;
    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(store.head(tenant)).isZero();
    assertThat(found(store, tenant, item.id())).contains(item);
    assertThat(store.outcomes(tenant, device, 0, 10)).isEmpty();
    assertThat(latest(tenant, List.of(item.mutationId()))).isEmpty();
  }

  @Test
  void twoOutcomesWithOneSeqAreABugAndRollBack() {
    String tenant = newTenant();
    UUID device = UUID.randomUUID();
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.appendOutcomes(List.of(new OutcomeRow(1, device, merged(fx.uuid(), 1, "keepServer"), Instant.now()),
          new OutcomeRow(1, device, merged(fx.uuid(), 1, "keepServer"), Instant.now())));
      return null;
    })).isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
    assertThat(store.outcomes(tenant, device, 0, 10)).isEmpty();
  }

  /** Outcomes cost one statement per write and per read, however many; nothing at all for none. */
  @Test
  void outcomesAreWrittenAndLookedUpInOneStatementAndNoneForNothing() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      String tenant = newTenant();
      UUID device = UUID.randomUUID();
      List<OutcomeRow> many = new ArrayList<>();
      for (int seq = 1; seq <= 500; seq++) {
        many.add(new OutcomeRow(seq, device, merged(fx.uuid(), seq, "keepServer"), Instant.now()));
      }
      int[] counts = counted.write(tenant, tx -> {
        int before = executed.get();
        tx.appendOutcomes(List.of());
        int forNone = executed.get() - before;
        tx.appendOutcomes(many);
        int forMany = executed.get() - before - forNone;
        before = executed.get();
        tx.latestOutcomes(List.of());
        int readNone = executed.get() - before;
        Map<UUID, MutationResult> latest = tx.latestOutcomes(many.stream().map(o -> o.result().mutationId()).toList());
        int readMany = executed.get() - before - readNone;
        assertThat(latest).hasSize(500);
        tx.advanceHead(500);
        return new int[] {forNone, forMany, readNone, readMany};
      });
      assertThat(counts).containsExactly(0, 1, 0, 1);
      assertThat(counted.outcomes(tenant, device, 0, 1000)).hasSize(500);
    }
  }

  /**
   * A database at schema version 2 keeps its inbox through the migration to version 3, which adds
   * the outcomes and the hold queue.
   */
  @Test
  void migratingAVersion2DatabaseKeepsTheInboxAndAddsOutcomes() throws Exception {
    String old = TestDatabases.freshSchema();
    try {
      PGSimpleDataSource raw = new PGSimpleDataSource();
      raw.setURL(TestDatabases.jdbcUrl());
      Flyway.configure(getClass().getClassLoader()).dataSource(raw).schemas(old).locations(PostgresServerStore.MIGRATIONS)
          .target("2").load().migrate();
      UUID id = UUID.randomUUID();
      UUID recordId = fx.uuid();
      try (Connection c = raw.getConnection(); Statement st = c.createStatement()) {
        st.execute("SET search_path TO " + old);
        st.execute("INSERT INTO tenants VALUES ('v2', now())");
        st.execute("INSERT INTO tenant_heads VALUES ('v2', 5)");
        st.execute("INSERT INTO inbox_items (tenant_id, id, kind, status, collection, record_id, detail, created_at)"
            + " VALUES ('v2', '" + id + "', 'conflict', 'open', 'appointments', '" + recordId + "', '{\"a\": 1}',"
            + " '2026-03-01T10:15:30.123456Z')");
      }
      try (PostgresServerStore migrated = PostgresServerStore.open(PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(old))) {
        InboxItem before = InboxItem.open(id, "conflict", "appointments", recordId, null, null, StoreJson.object("{\"a\": 1}"),
            Instant.parse("2026-03-01T10:15:30.123456Z"));
        assertThat(found(migrated, "v2", id)).contains(before);
        UUID device = UUID.randomUUID();
        MutationResult result = merged(fx.uuid(), 2, "keepServer");
        migrated.write("v2", tx -> {
          tx.resolveInboxItem(id, resolution("keepServer"), Instant.parse("2026-03-02T00:00:00Z"));
          tx.appendOutcomes(List.of(new OutcomeRow(6, device, result, Instant.parse("2026-03-02T00:00:00Z"))));
          tx.advanceHead(6);
          return null;
        });
        assertThat(migrated.outcomes("v2", device, 0, 10)).containsExactly(
            new OutcomeRow(6, device, result, Instant.parse("2026-03-02T00:00:00Z")));
        assertThat(migrated.inbox("v2", Optional.of("resolved"), Optional.empty(), Optional.empty(), 10))
            .extracting(InboxItem::id).containsExactly(id);
        DeviceQueue queue = migrated.write("v2", tx -> tx.deviceQueue(device));
        assertThat(queue).as("the hold queue starts empty").isEqualTo(new DeviceQueue(0, List.of()));
        assertThat(migrated.devicesWithHoldsBefore(Instant.parse("2100-01-01T00:00:00Z"))).isEmpty();
      }
    } finally {
      TestDatabases.dropSchema(old);
    }
  }

  // ---------------------------------------------------------------- per-device order and the hold queue

  @Test
  void aDevicesQueueReadsBackItsProgressAndHeldMutationsInDeviceSeqOrder() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID device = UUID.randomUUID();
    UUID otherDevice = UUID.randomUUID();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456789Z");
    HeldMutation seven = held(device, 7, t);
    HeldMutation three = held(device, 3, t.plusSeconds(2));
    HeldMutation fiveLater = held(device, 5, t.plusSeconds(5));
    HeldMutation fiveEarlier = held(device, 5, t.plusSeconds(1));
    HeldMutation elsewhere = held(otherDevice, 4, t);
    assertThat(queue(tenant, device)).as("before anything").isEqualTo(new DeviceQueue(0, List.of()));

    store.write(tenant, tx -> {
      tx.hold(List.of(seven, fiveLater, three));
      tx.hold(List.of(fiveEarlier, elsewhere));
      tx.setDeviceProgress(device, 2);
      return null;
    });
    // The same device id in another tenant is another device.
    store.write(otherTenant, tx -> {
      tx.hold(List.of(held(device, 1, t)));
      tx.setDeviceProgress(device, 9);
      return null;
    });

    DeviceQueue queue = queue(tenant, device);
    assertThat(queue.progress()).isEqualTo(2);
    assertThat(queue.held()).as("by deviceSeq, then by arrival")
        .containsExactly(micros(three), micros(fiveEarlier), micros(fiveLater), micros(seven));
    assertThat(queue.held().get(0).mutation()).as("the mutation as sent").isEqualTo(three.mutation());
    assertThat(queue.held().get(0).receivedAt()).isEqualTo(t.plusSeconds(2).truncatedTo(ChronoUnit.MICROS));
    assertThat(queue(tenant, otherDevice)).as("held, no progress yet").isEqualTo(new DeviceQueue(0, List.of(micros(elsewhere))));

    // Progress never goes back; a transaction reads its own writes.
    DeviceQueue inside = store.write(tenant, tx -> {
      tx.setDeviceProgress(device, 1);
      assertThat(tx.deviceQueue(device).progress()).as("not lowered").isEqualTo(2);
      tx.setDeviceProgress(device, 4);
      tx.setDeviceProgress(device, 3);
      tx.setDeviceProgress(otherDevice, 6);
      return tx.deviceQueue(device);
    });
    assertThat(inside.progress()).isEqualTo(4);
    assertThat(queue(tenant, device).progress()).isEqualTo(4);
    assertThat(queue(tenant, otherDevice)).isEqualTo(new DeviceQueue(6, List.of(micros(elsewhere))));
    assertThat(queue(otherTenant, device).progress()).isEqualTo(9);
    assertThat(queue(otherTenant, device).held()).extracting(HeldMutation::deviceSeq).containsExactly(1L);
    assertThat(queue(otherTenant, otherDevice)).isEqualTo(new DeviceQueue(0, List.of()));
  }

  @Test
  void heldMutationsAreFoundAndReleasedWithinTheirTenantOnly() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID device = UUID.randomUUID();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456789Z");
    HeldMutation a = held(device, 3, t);
    HeldMutation b = held(device, 4, t);
    HeldMutation c = held(device, 5, t);
    UUID unknown = fx.uuid();
    List<UUID> all = List.of(id(a), id(b), id(c), unknown);
    store.write(tenant, tx -> {
      tx.hold(List.of(a, b, c));
      return null;
    });

    assertThat(findHeld(tenant, List.of(id(a), id(c), unknown))).isEqualTo(Map.of(id(a), micros(a), id(c), micros(c)));
    assertThat(findHeld(tenant, List.of())).isEmpty();
    assertThat(findHeld(otherTenant, all)).as("another tenant's").isEmpty();

    // Another tenant may hold the same mutation id, and its release touches only its own.
    HeldMutation aElsewhere = held(UUID.randomUUID(), 8, t);
    HeldMutation sameIdElsewhere = new HeldMutation(aElsewhere.deviceId(), a.mutation(), "other-hash", t);
    store.write(otherTenant, tx -> {
      tx.hold(List.of(sameIdElsewhere));
      return null;
    });
    assertThat(findHeld(otherTenant, all)).isEqualTo(Map.of(id(a), micros(sameIdElsewhere)));
    store.write(otherTenant, tx -> {
      tx.release(all);
      return null;
    });
    assertThat(findHeld(otherTenant, all)).isEmpty();
    assertThat(findHeld(tenant, all)).containsOnlyKeys(id(a), id(b), id(c));

    store.write(tenant, tx -> {
      tx.release(List.of(id(a), id(c), unknown));
      tx.release(List.of());
      return null;
    });
    assertThat(findHeld(tenant, all)).isEqualTo(Map.of(id(b), micros(b)));
    assertThat(queue(tenant, device).held()).containsExactly(micros(b));

    // A released mutation is gone, so it may be held again.
    store.write(tenant, tx -> {
      tx.hold(List.of(a));
      return null;
    });
    assertThat(queue(tenant, device).held()).containsExactly(micros(a), micros(b));
  }

  @Test
  void devicesWithHoldsBeforeACutoffAreListedOnceEachAcrossTenants() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID d1 = UUID.randomUUID();
    UUID d2 = UUID.randomUUID();
    UUID d3 = UUID.randomUUID();
    // Long before anything else this class holds, so the lists below are complete.
    Instant t = Instant.parse("1990-01-01T00:00:00.000001500Z");
    HeldMutation first = held(d1, 5, t);
    store.write(tenant, tx -> {
      tx.hold(List.of(first, held(d1, 6, t.plusSeconds(10)), held(d2, 2, t.plusSeconds(20))));
      return null;
    });
    store.write(otherTenant, tx -> {
      tx.hold(List.of(held(d1, 9, t.plusSeconds(5)), held(d3, 3, t.plusSeconds(100))));
      return null;
    });
    DeviceKey a1 = new DeviceKey(tenant, d1);
    DeviceKey a2 = new DeviceKey(tenant, d2);
    DeviceKey b1 = new DeviceKey(otherTenant, d1);
    DeviceKey b3 = new DeviceKey(otherTenant, d3);

    assertThat(store.devicesWithHoldsBefore(t)).as("received at the cutoff is not before it").isEmpty();
    assertThat(store.devicesWithHoldsBefore(t.plusNanos(1_000))).containsExactly(a1);
    assertThat(store.devicesWithHoldsBefore(t.plusSeconds(6))).containsExactlyInAnyOrder(a1, b1);
    assertThat(store.devicesWithHoldsBefore(t.plusSeconds(21))).as("a device with two holds is listed once")
        .containsExactlyInAnyOrder(a1, a2, b1);
    assertThat(store.devicesWithHoldsBefore(t.plusSeconds(101))).containsExactlyInAnyOrder(a1, a2, b1, b3)
        .isSortedAccordingTo(java.util.Comparator.comparing(DeviceKey::tenantId));

    store.write(tenant, tx -> {
      tx.release(List.of(id(first)));
      return null;
    });
    assertThat(store.devicesWithHoldsBefore(t.plusSeconds(6))).as("only its later hold is left").containsExactly(b1);
    assertThat(store.devicesWithHoldsBefore(t.plusSeconds(11))).containsExactlyInAnyOrder(a1, b1);
  }

  @Test
  void aFailedTransactionRollsBackItsHoldsReleasesAndProgress() {
    String tenant = newTenant();
    UUID device = UUID.randomUUID();
    Instant t = Instant.parse("2026-03-01T10:15:30.123456Z");
    HeldMutation kept = held(device, 5, t);
    HeldMutation added = held(device, 7, t);
    store.write(tenant, tx -> {
      tx.hold(List.of(kept));
      tx.setDeviceProgress(device, 2);
      return null;
    });
    RuntimeException boom = new UnsupportedOperationException("the service's own failure");
    Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> store.write(tenant, tx -> {
      tx.hold(List.of(added));
      tx.release(List.of(id(kept)));
      tx.setDeviceProgress(device, 6);
      tx.setDeviceProgress(UUID.randomUUID(), 1);
      throw boom;
    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(queue(tenant, device)).isEqualTo(new DeviceQueue(2, List.of(kept)));
    assertThat(findHeld(tenant, List.of(id(added)))).isEmpty();
  }

  @Test
  void holdingAMutationTwiceIsABugAndRollsBack() {
    String tenant = newTenant();
    UUID device = UUID.randomUUID();
    HeldMutation once = held(device, 4, Instant.now());
    store.write(tenant, tx -> {
      tx.hold(List.of(once));
      return null;
    });
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.hold(List.of(held(device, 6, Instant.now()), once));
      return null;
    })).isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
    assertThat(queue(tenant, device).held()).containsExactly(micros(once));
  }

  /**
   * Each hold-queue method is one statement however many mutations it carries, and the batch ones
   * none for nothing; the queue (progress and held mutations) is one round trip with or without
   * held mutations.
   */
  @Test
  void theHoldQueueCostsOneStatementPerCallAndNoneForNothing() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      String tenant = newTenant();
      UUID device = UUID.randomUUID();
      Instant now = Instant.now();
      List<HeldMutation> many = new ArrayList<>();
      for (int i = 0; i < 1000; i++) {
        many.add(held(device, 2 + i, now));
      }
      List<UUID> ids = many.stream().map(PostgresServerStoreBehaviourTest::id).toList();
      int[] counts = counted.write(tenant, tx -> new int[] {
          cost(executed, () -> assertThat(tx.deviceQueue(device).held()).isEmpty()),
          cost(executed, () -> assertThat(tx.findHeld(List.of())).isEmpty()),
          cost(executed, () -> tx.hold(List.of())),
          cost(executed, () -> tx.hold(many)),
          cost(executed, () -> assertThat(tx.deviceQueue(device).held()).hasSize(1000)),
          cost(executed, () -> assertThat(tx.findHeld(ids)).hasSize(1000)),
          cost(executed, () -> tx.release(List.of())),
          cost(executed, () -> tx.release(ids.subList(0, 500))),
          cost(executed, () -> tx.setDeviceProgress(device, 1)),
          cost(executed, () -> assertThat(tx.deviceQueue(device)).satisfies(q -> {
            assertThat(q.progress()).isEqualTo(1);
            assertThat(q.held()).hasSize(500);
          }))});
      assertThat(counts).containsExactly(1, 0, 0, 1, 1, 1, 0, 1, 1, 1);
    }
  }

  /**
   * Through the push service: a push held whole after a gap is the counter lock, findLogged,
   * findHeld, deviceQueue, findRecords, hold and markPushed (nothing is logged, so no advanceHead
   * or progress write). The push that fills the gap is a plain push ({@value #PLAIN_PUSH}) plus the
   * release of the held mutation and its outcome. A replay of mutations all found in the log skips
   * findHeld (and, changing nothing, every write but markPushed).
   */
  @Test
  void aHeldPushAndThePushFillingItsGapCostAFewStatementsEach() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());
      Mutation first = cancelledBooking();
      Mutation second = cancelledBooking();
      Mutation third = cancelledBooking();

      executed.set(0);
      MutationResult held = push.push(device, TestDevices.signed(device, List.of(third))).results().get(0);
      int forHeld = executed.get();

      executed.set(0);
      List<MutationResult> filled = push.push(device, TestDevices.signed(device, List.of(first, second))).results();
      int forFill = executed.get();

      executed.set(0);
      List<MutationResult> replayed = push.push(device, TestDevices.signed(device, List.of(first, second, third))).results();
      int forReplay = executed.get();

      assertThat(held.status()).isEqualTo(MutationStatus.HELD);
      assertThat(filled).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(replayed).allMatch(r -> r.status() == MutationStatus.APPLIED && r.replayed());
      assertThat(counted.pull(device.tenantId(), PullQuery.all(0, 10, Set.of())).records()).extracting(PulledRecord::recordId)
          .containsExactly(first.recordId(), second.recordId(), third.recordId());
      assertThat(queue(device.tenantId(), device.deviceId())).isEqualTo(new DeviceQueue(3, List.of()));
      assertThat(forHeld).as("statements for a push that is held").isEqualTo(7);
      assertThat(forFill).as("statements for the push that fills the gap").isEqualTo(PLAIN_PUSH + 2);
      assertThat(forReplay).as("statements for a replay").isEqualTo(4);
    }
  }

  // ---------------------------------------------------------------- helpers

  /** A mutation of {@code device} with this deviceSeq, held since {@code at}. */
  private HeldMutation held(UUID device, long deviceSeq, Instant at) {
    Mutation m = fx.create(fx.uuid());
    Mutation renumbered = new Mutation(m.mutationId(), deviceSeq, m.collection(), m.recordId(), m.op(), m.baseVersion(), m.data(),
        m.hlc(), m.clientTime());
    return new HeldMutation(device, renumbered, "hash-" + m.mutationId(), at);
  }

  private void insertDevice(DeviceRow device) {
    store.write(device.tenantId(), tx -> {
      tx.insertDevice(device);
      return null;
    });
  }

  private static UUID id(HeldMutation h) {
    return h.mutation().mutationId();
  }

  // ---------------------------------------------------------------- API clients and the records API

  @Test
  void aDeviceAndAnApiClientReadBackWithTheirKind() {
    String tenant = newTenant();
    Instant at = Instant.parse("2026-03-01T10:15:30.123456Z");
    DeviceRow device = new DeviceRow(UUID.randomUUID(), tenant, "tablet", "pk", "hash-" + UUID.randomUUID(), at, null, null,
        DeviceRow.DEVICE, "amara", at.plusSeconds(3600), null);
    DeviceRow client = new DeviceRow(UUID.randomUUID(), tenant, "back office", null, "hash-" + UUID.randomUUID(), at, null, null,
        DeviceRow.API_CLIENT, null, null, null);
    insertDevice(device);
    insertDevice(client);
    assertThat(store.findDeviceByTokenHash(device.tokenHash())).contains(device);
    assertThat(store.findDeviceByTokenHash(client.tokenHash())).contains(client);

    store.markPulled(tenant, client.deviceId(), at.plusSeconds(1));
    assertThat(store.findDeviceByTokenHash(client.tokenHash())).get()
        .satisfies(d -> assertThat(d.kind()).isEqualTo(DeviceRow.API_CLIENT))
        .satisfies(d -> assertThat(d.lastPullAt()).isEqualTo(at.plusSeconds(1)));
  }

  @Test
  void aKindOtherThanDeviceOrApiClientIsABug() {
    String tenant = newTenant();
    for (String kind : new String[] {"admin", "Device", null}) {
      DeviceRow odd = new DeviceRow(UUID.randomUUID(), tenant, "x", null, "hash-" + UUID.randomUUID(), Instant.now(), null, null,
          kind, null, null, null);
      assertThatThrownBy(() -> insertDevice(odd)).as(String.valueOf(kind))
          .isInstanceOf(IllegalStateException.class).isNotInstanceOf(StoreUnavailableException.class);
      assertThat(store.findDeviceByTokenHash(odd.tokenHash())).isEmpty();
    }
  }

  /** Devices enrolled under schema version 3 have no kind; the migration to version 4 makes them devices. */
  @Test
  void migratingAVersion3DatabaseKeepsItsDevicesAsDevices() throws Exception {
    String old = TestDatabases.freshSchema();
    try {
      PGSimpleDataSource raw = new PGSimpleDataSource();
      raw.setURL(TestDatabases.jdbcUrl());
      Flyway.configure(getClass().getClassLoader()).dataSource(raw).schemas(old).locations(PostgresServerStore.MIGRATIONS)
          .target("3").load().migrate();
      UUID deviceId = UUID.randomUUID();
      try (Connection c = raw.getConnection(); Statement st = c.createStatement()) {
        st.execute("SET search_path TO " + old);
        st.execute("INSERT INTO tenants VALUES ('v3', now())");
        st.execute("INSERT INTO tenant_heads VALUES ('v3', 0)");
        st.execute("INSERT INTO devices (device_id, tenant_id, name, public_key, token_hash, enrolled_at)"
            + " VALUES ('" + deviceId + "', 'v3', 'tablet', NULL, 'old-hash', '2026-03-01T10:15:30.123456Z')");
      }
      try (PostgresServerStore migrated = PostgresServerStore.open(PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(old))) {
        assertThat(migrated.findDeviceByTokenHash("old-hash")).contains(new DeviceRow(deviceId, "v3", "tablet", null, "old-hash",
            Instant.parse("2026-03-01T10:15:30.123456Z"), null, null, DeviceRow.DEVICE, null, null, null));
        DeviceRow client = new DeviceRow(UUID.randomUUID(), "v3", "erp", null, "new-hash",
            Instant.parse("2026-03-02T00:00:00Z"), null, null, DeviceRow.API_CLIENT, null, null, null);
        // Schema version 6 starts every existing tenant's audit chain empty.
        AuditHead head = migrated.write("v3", tx -> {
          tx.insertDevice(client);
          return tx.auditHead();
        });
        assertThat(head).isEqualTo(AuditHead.EMPTY);
        assertThat(migrated.findDeviceByTokenHash("new-hash")).contains(client);
      }
    } finally {
      TestDatabases.dropSchema(old);
    }
  }

  @Test
  void listRecordsFiltersByOneFieldAndByTwo() {
    String tenant = newTenant();
    UUID a = rid(1);
    UUID b = rid(2);
    UUID c = rid(3);
    UUID d = rid(4);
    putRecords(tenant, List.of(
        live("people", a, data().put("city", "Kandy").put("status", "active")),
        live("people", b, data().put("city", "Galle").put("status", "active")),
        live("people", c, data().put("city", "Kandy").put("status", "moved")),
        live("people", d, data().put("status", "active"))));
    Optional<UUID> start = Optional.empty();

    assertThat(ids(store.listRecords(tenant, "people", Map.of(), start, 100))).containsExactly(a, b, c, d);
    assertThat(ids(store.listRecords(tenant, "people", Map.of("city", "Kandy"), start, 100))).containsExactly(a, c);
    assertThat(ids(store.listRecords(tenant, "people", Map.of("status", "active"), start, 100))).containsExactly(a, b, d);
    assertThat(ids(store.listRecords(tenant, "people", Map.of("city", "Kandy", "status", "active"), start, 100)))
        .containsExactly(a);
    assertThat(ids(store.listRecords(tenant, "people", Map.of("city", "Galle", "status", "moved"), start, 100))).isEmpty();
    assertThat(store.listRecords(tenant, "people", Map.of("city", "kandy"), start, 100)).as("case matters").isEmpty();
    assertThat(store.listRecords(tenant, "people", Map.of("nosuchfield", "Kandy"), start, 100)).isEmpty();
    assertThat(store.listRecords(tenant, "people", Map.of("city", ""), start, 100)).as("a missing field is not empty").isEmpty();

    StoredRecord first = store.listRecords(tenant, "people", Map.of("city", "Kandy"), start, 1).get(0);
    assertThat(first.collection()).isEqualTo("people");
    assertThat(first.deleted()).isFalse();
    assertThat(first.data()).isEqualTo(data().put("city", "Kandy").put("status", "active"));
    assertThat(first.seq()).isPositive();
  }

  /**
   * Values compare as text: a string field as the string, anything else as its JSON text as
   * PostgreSQL writes it ({@code ->>}): so the string "12" and the number 12 both match "12", the
   * number 12.50 keeps its scale, and an object is written in jsonb's normal form.
   */
  @Test
  void aFieldMatchesTheTextOfItsValueWhetherStringNumberBooleanOrObject() {
    String tenant = newTenant();
    UUID text = rid(1);
    UUID integer = rid(2);
    UUID decimal = rid(3);
    UUID bool = rid(4);
    UUID object = rid(5);
    UUID jsonNull = rid(6);
    UUID textTrue = rid(7);
    ObjectNode withObject = data();
    withObject.putObject("code").put("b", 1).put("a", "x");
    putRecords(tenant, List.of(
        live("items", text, data().put("code", "12")),
        live("items", integer, data().put("code", 12)),
        live("items", decimal, data().put("code", new java.math.BigDecimal("12.50"))),
        live("items", bool, data().put("code", true)),
        live("items", object, withObject),
        live("items", jsonNull, data().putNull("code")),
        live("items", textTrue, data().put("code", "true"))));
    Optional<UUID> start = Optional.empty();

    assertThat(ids(store.listRecords(tenant, "items", Map.of("code", "12"), start, 100))).containsExactly(text, integer);
    assertThat(ids(store.listRecords(tenant, "items", Map.of("code", "12.50"), start, 100))).containsExactly(decimal);
    assertThat(store.listRecords(tenant, "items", Map.of("code", "12.5"), start, 100)).isEmpty();
    assertThat(ids(store.listRecords(tenant, "items", Map.of("code", "true"), start, 100))).containsExactly(bool, textTrue);
    assertThat(ids(store.listRecords(tenant, "items", Map.of("code", "{\"a\": \"x\", \"b\": 1}"), start, 100)))
        .containsExactly(object);
    assertThat(store.listRecords(tenant, "items", Map.of("code", "\"12\""), start, 100)).as("a string is not quoted").isEmpty();
    assertThat(store.listRecords(tenant, "items", Map.of("code", "null"), start, 100))
        .as("JSON null reads as SQL NULL, which equals nothing").isEmpty();
  }

  @Test
  void listRecordsLeavesOutTombstones() {
    String tenant = newTenant();
    UUID live = rid(1);
    UUID deleted = rid(2);
    putRecords(tenant, List.of(live("people", live, data().put("city", "Kandy")),
        new StoredRecord("people", deleted, 2, true, null, 2, Instant.now(), Map.of(), null)));
    assertThat(ids(store.listRecords(tenant, "people", Map.of(), Optional.empty(), 100))).containsExactly(live);
    assertThat(store.findRecord(tenant, new RecordKey("people", deleted))).get()
        .satisfies(r -> assertThat(r.deleted()).isTrue());
  }

  /**
   * Pages follow the record id as PostgreSQL orders uuids: by their bytes unsigned, which is their
   * text order (Java's {@code UUID.compareTo} would put {@code 8...} before {@code 0...}).
   */
  @Test
  void listRecordsPagesInRecordIdOrderAfterACursor() {
    String tenant = newTenant();
    List<UUID> ordered = List.of(
        UUID.fromString("00000000-0000-4000-8000-000000000001"),
        UUID.fromString("0fffffff-0000-4000-8000-000000000000"),
        UUID.fromString("7fffffff-ffff-4fff-bfff-ffffffffffff"),
        UUID.fromString("80000000-0000-4000-8000-000000000000"),
        UUID.fromString("ffffffff-ffff-4fff-bfff-fffffffffffe"));
    List<StoredRecord> rows = new ArrayList<>();
    for (int i = ordered.size() - 1; i >= 0; i--) {
      rows.add(live("people", ordered.get(i), data().put("city", "Kandy").put("i", i)));
    }
    rows.add(live("people", rid(99), data().put("city", "Galle")));
    putRecords(tenant, rows);
    Map<String, String> kandy = Map.of("city", "Kandy");

    List<UUID> page1 = ids(store.listRecords(tenant, "people", kandy, Optional.empty(), 2));
    List<UUID> page2 = ids(store.listRecords(tenant, "people", kandy, Optional.of(page1.get(1)), 2));
    List<UUID> page3 = ids(store.listRecords(tenant, "people", kandy, Optional.of(page2.get(1)), 2));
    assertThat(page1).containsExactlyElementsOf(ordered.subList(0, 2));
    assertThat(page2).containsExactlyElementsOf(ordered.subList(2, 4));
    assertThat(page3).containsExactlyElementsOf(ordered.subList(4, 5));
    assertThat(store.listRecords(tenant, "people", kandy, Optional.of(ordered.get(4)), 2)).isEmpty();
    assertThat(ids(store.listRecords(tenant, "people", kandy, Optional.of(UUID.fromString("10000000-0000-4000-8000-000000000000")), 2)))
        .as("a cursor that is no record id").containsExactlyElementsOf(ordered.subList(2, 4));
    assertThat(store.listRecords(tenant, "people", kandy, Optional.empty(), 0)).isEmpty();
    assertThatThrownBy(() -> store.listRecords(tenant, "people", kandy, Optional.empty(), -1))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void listRecordsKeepsToItsTenantAndCollection() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID mine = rid(1);
    putRecords(tenant, List.of(live("people", mine, data().put("city", "Kandy")),
        live("places", rid(2), data().put("city", "Kandy")),
        live("people2", rid(3), data().put("city", "Kandy"))));
    putRecords(otherTenant, List.of(live("people", rid(4), data().put("city", "Kandy")),
        live("people", mine, data().put("city", "Kandy"))));
    assertThat(ids(store.listRecords(tenant, "people", Map.of("city", "Kandy"), Optional.empty(), 100))).containsExactly(mine);
    assertThat(ids(store.listRecords(otherTenant, "people", Map.of("city", "Kandy"), Optional.empty(), 100)))
        .containsExactly(mine, rid(4));
    assertThat(store.listRecords(tenant, "nosuchcollection", Map.of(), Optional.empty(), 100)).isEmpty();
    assertThat(store.listRecords("no-such-tenant", "people", Map.of(), Optional.empty(), 100)).isEmpty();
    assertThat(store.findRecord(tenant, new RecordKey("people", mine))).get()
        .satisfies(r -> assertThat(r.seq()).isEqualTo(1));
    assertThat(store.findRecord(tenant, new RecordKey("places", mine))).isEmpty();
    assertThat(store.findRecord("no-such-tenant", new RecordKey("people", mine))).isEmpty();
  }

  /** Field names are user input: bound as parameters, whatever they hold they are only names. */
  @Test
  void aFieldNameWithQuotesOrSqlInItIsOnlyAName() {
    String tenant = newTenant();
    String[] names = {
        "a'b\"c", "x') OR ('1'='1", "city' OR 1=1 --", "'; DROP TABLE records; --", "what?", "$1", "\\", "data->>'city'",
        "x\" = \"x"};
    UUID odd = rid(1);
    UUID plain = rid(2);
    ObjectNode oddData = data().put("city", "Kandy");
    for (String n : names) {
      oddData.put(n, "v");
    }
    putRecords(tenant, List.of(live("people", odd, oddData), live("people", plain, data().put("city", "Kandy"))));

    for (String n : names) {
      assertThat(ids(store.listRecords(tenant, "people", Map.of(n, "v"), Optional.empty(), 100))).as(n).containsExactly(odd);
      assertThat(store.listRecords(tenant, "people", Map.of(n, "w"), Optional.empty(), 100)).as(n).isEmpty();
      assertThat(ids(store.listRecords(tenant, "people", Map.of(n, "v", "city", "Kandy"), Optional.empty(), 100))).as(n)
          .containsExactly(odd);
    }
    assertThat(store.listRecords(tenant, "people", Map.of("city", "x' OR '1'='1"), Optional.empty(), 100)).isEmpty();
    assertThat(store.listRecords(tenant, "people", Map.of("nosuch' OR '1'='1", "x' OR '1'='1"), Optional.empty(), 100)).isEmpty();
    assertThat(store.listRecords(tenant, "people\" OR 1=1 --", Map.of(), Optional.empty(), 100)).isEmpty();
    assertThat(ids(store.listRecords(tenant, "people", Map.of(), Optional.empty(), 100))).as("the table is still there")
        .containsExactly(odd, plain);
  }

  @Test
  void listingRecordsIsOneStatementHoweverManyFilters() {
    String tenant = newTenant();
    putRecords(tenant, List.of(live("people", rid(1), data().put("a", "1").put("b", 2).put("c", true))));
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      assertThat(cost(executed, () -> assertThat(counted.listRecords(tenant, "people", Map.of("a", "1", "b", "2", "c", "true"),
          Optional.of(rid(0)), 10)).hasSize(1))).isEqualTo(1);
      assertThat(cost(executed, () -> counted.listRecords(tenant, "people", Map.of(), Optional.empty(), 10))).isEqualTo(1);
      assertThat(cost(executed, () -> counted.listRecords(tenant, "people", Map.of(), Optional.empty(), 0))).isZero();
    }
  }

  // ---------------------------------------------------------------- finding records by field inside a write

  @Test
  void findByFieldsFindsLiveMatchesInRecordIdOrderUpToTheLimit() {
    String tenant = newTenant();
    UUID a = rid(1);
    UUID b = rid(2);
    UUID c = rid(3);
    UUID gone = rid(4);
    UUID e = rid(5);
    putRecords(tenant, List.of(
        live("people", e, data().put("city", "Kandy").put("status", "active")),
        live("people", c, data().put("city", "Kandy").put("status", "moved")),
        live("people", a, data().put("city", "Kandy").put("status", "active").put("age", 40)),
        live("people", b, data().put("city", "Galle").put("status", "active")),
        new StoredRecord("people", gone, 2, true, null, 2, Instant.now(), Map.of(), null),
        live("places", rid(6), data().put("city", "Kandy"))));

    store.write(tenant, tx -> {
      assertThat(ids(tx.findByFields("people", Map.of("city", "Kandy"), 100))).containsExactly(a, c, e);
      assertThat(ids(tx.findByFields("people", Map.of("city", "Kandy", "status", "active"), 100))).containsExactly(a, e);
      assertThat(ids(tx.findByFields("people", Map.of("age", "40"), 100))).as("a number as its JSON text").containsExactly(a);
      assertThat(ids(tx.findByFields("people", Map.of(), 100))).as("no tombstone, no other collection")
          .containsExactly(a, b, c, e);
      assertThat(ids(tx.findByFields("people", Map.of("city", "Kandy"), 2))).containsExactly(a, c);
      assertThat(tx.findByFields("people", Map.of("city", "kandy"), 100)).as("case matters").isEmpty();
      assertThat(tx.findByFields("people", Map.of("city", "Kandy"), 0)).isEmpty();
      assertThatThrownBy(() -> tx.findByFields("people", Map.of(), -1)).isInstanceOf(IllegalArgumentException.class);
      StoredRecord first = tx.findByFields("people", Map.of("status", "active"), 1).get(0);
      assertThat(first.key()).isEqualTo(new RecordKey("people", a));
      assertThat(first.deleted()).isFalse();
      assertThat(first.data()).isEqualTo(data().put("city", "Kandy").put("status", "active").put("age", 40));
      assertThat(first.seq()).isEqualTo(3);
      return null;
    });
    assertThat(ids(store.write(tenant, tx -> tx.findByFields("people", Map.of("city", "Kandy"), 100))))
        .as("as listRecords finds them").isEqualTo(ids(store.listRecords(tenant, "people", Map.of("city", "Kandy"),
            Optional.empty(), 100)));
  }

  @Test
  void findByFieldsSeesWhatItsOwnTransactionWroteAndNothingOfAnotherTenant() {
    String tenant = newTenant();
    String otherTenant = newTenant();
    UUID old = rid(1);
    UUID fresh = rid(2);
    UUID deletedNow = rid(3);
    putRecords(tenant, List.of(live("people", old, data().put("city", "Kandy")),
        live("people", deletedNow, data().put("city", "Kandy"))));
    putRecords(otherTenant, List.of(live("people", rid(7), data().put("city", "Kandy")),
        live("people", fresh, data().put("city", "Kandy"))));

    List<UUID> seenInside = store.write(tenant, tx -> {
      tx.putRecords(List.of(
          new StoredRecord("people", fresh, 1, false, data().put("city", "Kandy"), 3, Instant.now(), Map.of(), null),
          new StoredRecord("people", deletedNow, 2, true, null, 4, Instant.now(), Map.of(), null)));
      tx.advanceHead(4);
      return ids(tx.findByFields("people", Map.of("city", "Kandy"), 100));
    });
    assertThat(seenInside).containsExactly(old, fresh);
    assertThat(ids(store.write(otherTenant, tx -> tx.findByFields("people", Map.of("city", "Kandy"), 100))))
        .containsExactly(fresh, rid(7));
    List<StoredRecord> ofEmptyTenant = store.write(newTenant(), tx -> tx.findByFields("people", Map.of(), 100));
    assertThat(ofEmptyTenant).isEmpty();

    // A write that is rolled back is seen inside its transaction only.
    UUID rolledBack = rid(5);
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.putRecords(List.of(new StoredRecord("people", rolledBack, 1, false, data().put("city", "Kandy"), 5, Instant.now(),
          Map.of(), null)));
      assertThat(ids(tx.findByFields("people", Map.of("city", "Kandy"), 100))).containsExactly(old, fresh, rolledBack);
      throw new IllegalStateException("roll back");
    })).hasMessageContaining("roll back");
    assertThat(ids(store.write(tenant, tx -> tx.findByFields("people", Map.of("city", "Kandy"), 100))))
        .containsExactly(old, fresh);
  }

  @Test
  void findByFieldsIsOneStatementHoweverManyFiltersAndNoneForALimitOfZero() {
    String tenant = newTenant();
    putRecords(tenant, List.of(live("people", rid(1), data().put("a", "1").put("b", 2).put("c", true))));
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      counted.write(tenant, tx -> {
        assertThat(cost(executed, () -> assertThat(tx.findByFields("people", Map.of("a", "1", "b", "2", "c", "true"), 10))
            .hasSize(1))).isEqualTo(1);
        assertThat(cost(executed, () -> tx.findByFields("people", Map.of(), 10))).isEqualTo(1);
        assertThat(cost(executed, () -> tx.findByFields("people", Map.of("a", "1"), 0))).isZero();
        return null;
      });
    }
  }

  // ---------------------------------------------------------------- identity, scopes and the audit chain (issue 4)

  /**
   * The statement that takes the counter lock also reads the audit head, so a write transaction
   * knows it for free; an append is one statement and moves the head; an entry that does not
   * follow the head is refused before any statement. Content comes back byte for byte (not
   * re-encoded, keys in their order), its time to the microsecond.
   */
  @Test
  void theAuditHeadComesWithTheCounterLockAndAnAppendIsOneStatement() {
    String tenant = newTenant();
    String content = "{\"z\":1, \"a\":\"\u00fc\u2603 \\\"q\\\"\",\"n\":12.50}";
    Instant at = Instant.parse("2026-03-01T10:15:30.123456789Z");
    AuditEntry first = new AuditEntry(1, at, content, AuditHead.GENESIS_HASH, "1".repeat(64));
    AuditEntry second = new AuditEntry(2, at, "{}", first.hash(), "2".repeat(64));
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      int[] costs = counted.write(tenant, tx -> {
        int lock = executed.get();
        assertThat(tx.auditHead()).isEqualTo(AuditHead.EMPTY);
        int appendFirst = cost(executed, () -> tx.appendAudit(first));
        assertThat(tx.auditHead()).isEqualTo(new AuditHead(1, first.hash()));
        int refused = cost(executed, () -> {
          assertThatThrownBy(() -> tx.appendAudit(first)).as("seq again").isInstanceOf(IllegalStateException.class);
          assertThatThrownBy(() -> tx.appendAudit(new AuditEntry(2, at, "{}", "f".repeat(64), "2".repeat(64))))
              .as("another prevHash").isInstanceOf(IllegalStateException.class);
          assertThatThrownBy(() -> tx.appendAudit(new AuditEntry(3, at, "{}", first.hash(), "3".repeat(64))))
              .as("a gap").isInstanceOf(IllegalStateException.class);
        });
        return new int[] {lock, appendFirst, refused};
      });
      assertThat(costs).containsExactly(1, 1, 0);
      assertThat(cost(executed, () -> counted.write(tenant, tx -> {
        assertThat(tx.auditHead()).isEqualTo(new AuditHead(1, first.hash()));
        tx.appendAudit(second);
        return null;
      }))).isEqualTo(2);
    }
    assertThat(store.<AuditHead>read(tenant, r -> r.auditHead())).isEqualTo(new AuditHead(2, second.hash()));
    assertThat(store.<List<AuditEntry>>read(tenant, r -> r.audit(0, 10))).containsExactly(
        new AuditEntry(1, at.truncatedTo(ChronoUnit.MICROS), content, AuditHead.GENESIS_HASH, first.hash()),
        new AuditEntry(2, at.truncatedTo(ChronoUnit.MICROS), "{}", first.hash(), second.hash()));
    assertThat(store.<List<AuditEntry>>read(tenant, r -> r.audit(1, 10))).extracting(AuditEntry::seq).containsExactly(2L);
    assertThat(store.<List<AuditEntry>>read(tenant, r -> r.audit(0, 1))).extracting(AuditEntry::seq).containsExactly(1L);
    assertThat(store.<List<AuditEntry>>read(tenant, r -> r.audit(0, 0))).isEmpty();
  }

  @Test
  void anAuditAppendRolledBackLeavesTheHeadWhereItWas() {
    String tenant = newTenant();
    RuntimeException boom = new UnsupportedOperationException("after the append");
    assertThatThrownBy(() -> store.write(tenant, tx -> {
      tx.appendAudit(new AuditEntry(1, Instant.now(), "{}", AuditHead.GENESIS_HASH, "1".repeat(64)));
      throw boom;
    })).isSameAs(boom);
    assertThat(store.<AuditHead>write(tenant, tx -> tx.auditHead())).isEqualTo(AuditHead.EMPTY);
    assertThat(store.<List<AuditEntry>>read(tenant, r -> r.audit(0, 10))).isEmpty();
  }

  /**
   * A read transaction is one snapshot: what commits while it runs (through another connection,
   * which it does not block) is not seen by it, and is seen by the next one.
   */
  @Test
  void aReadIsOneSnapshotAndDoesNotBlockWriters() throws Exception {
    String tenant = newTenant();
    Mutation m = fx.create(fx.uuid());
    ExecutorService other = Executors.newSingleThreadExecutor();
    try {
      List<Object> seen = store.read(tenant, r -> {
        AuditHead before = r.auditHead();
        try {
          other.submit(() -> setupStore.write(tenant, tx -> {
            tx.appendLog(List.of(new LoggedMutation(1, m, "h", UUID.randomUUID(),
                MutationResult.applied(m.mutationId(), m.recordId(), 1), Instant.now(), null)));
            tx.appendOutcomes(List.of(new OutcomeRow(2, UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
                Instant.now())));
            tx.advanceHead(2);
            tx.appendAudit(new AuditEntry(1, Instant.now(), "{}", AuditHead.GENESIS_HASH, "1".repeat(64)));
            return null;
          })).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new AssertionError("the writer was blocked or failed", e);
        }
        return List.of(before, r.auditHead(), r.audit(0, 10), r.logged(0, 10), r.outcomeRows(0, 10));
      });
      assertThat(seen).containsExactly(AuditHead.EMPTY, AuditHead.EMPTY, List.of(), List.of(), List.of());
    } finally {
      other.shutdown();
    }
    assertThat(store.<Long>read(tenant, r -> r.auditHead().seq())).isEqualTo(1);
    assertThat(store.<List<LoggedMutation>>read(tenant, r -> r.logged(0, 10))).extracting(LoggedMutation::seq).containsExactly(1L);
    assertThat(store.<List<OutcomeRow>>read(tenant, r -> r.outcomeRows(0, 10))).extracting(OutcomeRow::seq).containsExactly(2L);
    assertThat(store.<List<OutcomeRow>>read(tenant, r -> r.outcomeRows(2, 10))).isEmpty();
  }

  /** With a pool of one connection, every way out of read() must hand the connection back. */
  @Test
  void aReadOfAnUnknownTenantOrThatThrowsIsRefusedAndHoldsNoConnection() {
    String tenant = newTenant();
    RuntimeException boom = new UnsupportedOperationException("the verifier's own failure");
    for (int i = 0; i < 3; i++) {
      assertThatThrownBy(() -> store.read("no-such-tenant", r -> r.auditHead())).isInstanceOf(IllegalArgumentException.class);
      assertThatThrownBy(() -> store.read(tenant, r -> {
        r.audit(0, 10);
        throw boom;
      })).isSameAs(boom);
    }
    ReadTxHolder escaped = new ReadTxHolder();
    store.read(tenant, r -> escaped.tx = r);
    assertThatThrownBy(() -> escaped.tx.audit(0, 10)).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> store.read(tenant, r -> r.logged(0, -1))).isInstanceOf(IllegalArgumentException.class);
    store.ping();
  }

  private static final class ReadTxHolder {
    ReadTx tx;
  }

  /**
   * A pull is one statement, moves and head included, whatever it asks for; key sets match as
   * sets (a present but empty set matches no scoped row), unscoped rows only when asked for.
   */
  @Test
  void aScopedPullIsOneStatementAndFiltersRowsAndMovesByKey() {
    String tenant = newTenant();
    UUID a = rid(1);
    UUID b = rid(2);
    UUID unscoped = rid(3);
    UUID blank = rid(4);
    UUID other = rid(5);
    store.write(tenant, tx -> {
      tx.putRecords(List.of(
          live("appointments", a, data()).withScopeKey("u1"),
          numbered(live("appointments", b, data()).withScopeKey("u2"), 2),
          numbered(live("notes", unscoped, data()), 3),
          numbered(live("appointments", blank, data()).withScopeKey(""), 4),
          numbered(live("clinics", other, data()).withScopeKey("u1"), 5)));
      tx.advanceHead(5);
      return null;
    });
    // a moves from u1 to u2 at seq 6.
    store.write(tenant, tx -> {
      tx.putRecords(List.of(numbered(live("appointments", a, data()).withScopeKey("u2"), 6)));
      tx.recordMoves(List.of(new ScopeMove(6, "appointments", a, "u1")));
      tx.advanceHead(6);
      return null;
    });
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      record Case(PullQuery q, List<Long> seqs, List<Long> moveSeqs) {}
      List<Case> cases = List.of(
          new Case(PullQuery.all(0, 10, Set.of()), List.of(2L, 3L, 4L, 5L, 6L), List.of()),
          new Case(new PullQuery(0, 10, Set.of(), Optional.of(Set.of("u1")), false, Set.of("u1")), List.of(5L), List.of(6L)),
          new Case(new PullQuery(0, 10, Set.of(), Optional.of(Set.of("u1")), true, Set.of()), List.of(3L, 5L), List.of()),
          new Case(new PullQuery(0, 10, Set.of(), Optional.of(Set.of("u2", "")), false, Set.of("u2")), List.of(2L, 4L, 6L), List.of()),
          new Case(new PullQuery(0, 10, Set.of(), Optional.of(Set.of()), false, Set.of("u1")), List.of(), List.of(6L)),
          new Case(new PullQuery(0, 10, Set.of(), Optional.of(Set.of()), true, Set.of()), List.of(3L), List.of()),
          new Case(new PullQuery(0, 10, Set.of("appointments"), Optional.of(Set.of("u1")), true, Set.of("u1")), List.of(), List.of(6L)),
          new Case(new PullQuery(0, 10, Set.of("clinics", "notes"), Optional.of(Set.of("u1")), true, Set.of("u1")), List.of(3L, 5L),
              List.of()),
          new Case(new PullQuery(6, 10, Set.of(), Optional.empty(), true, Set.of("u1")), List.of(), List.of()));
      for (Case c : cases) {
        executed.set(0);
        PullPage page = counted.pull(tenant, c.q());
        assertThat(executed.get()).as("statements for %s", c.q()).isEqualTo(1);
        assertThat(page.records()).as("%s", c.q()).extracting(PulledRecord::seq).containsExactlyElementsOf(c.seqs());
        assertThat(page.moves()).as("%s", c.q()).extracting(mv -> mv.move().seq()).containsExactlyElementsOf(c.moveSeqs());
        assertThat(page.head()).isEqualTo(6);
        assertThat(page.hasMore()).isFalse();
      }
    }
    PullPage moved = store.pull(tenant, new PullQuery(0, 10, Set.of(), Optional.of(Set.of("u1")), false, Set.of("u1")));
    assertThat(moved.moves()).containsExactly(new MovedRecord(new ScopeMove(6, "appointments", a, "u1"), Optional.of("u2")));
    assertThat(moved.records()).singleElement().satisfies(r -> assertThat(r.scopeKey()).isEqualTo("u1"));
    assertThat(store.pull(tenant, PullQuery.all(0, 10, Set.of("notes"))).records()).singleElement()
        .satisfies(r -> assertThat(r.scopeKey()).isNull());
    assertThat(store.pull("no-such-tenant", PullQuery.all(0, 10, Set.of()))).isEqualTo(new PullPage(List.of(), List.of(), false, 0));
    assertThatThrownBy(() -> store.pull(tenant, PullQuery.all(0, 0, Set.of()))).isInstanceOf(IllegalArgumentException.class);
  }

  /** Rows and moves are each limited; more of either beyond the limit is "more". */
  @Test
  void aPullPagesRowsAndMovesEachToTheLimit() {
    String tenant = newTenant();
    List<StoredRecord> rows = new ArrayList<>();
    List<ScopeMove> moves = new ArrayList<>();
    for (int i = 1; i <= 4; i++) {
      rows.add(numbered(live("appointments", rid(i), data()).withScopeKey("u2"), i));
      moves.add(new ScopeMove(i, "appointments", rid(i), "u1"));
    }
    store.write(tenant, tx -> {
      tx.putRecords(rows);
      tx.recordMoves(moves);
      tx.recordMoves(moves.subList(0, 1)); // again: stored once
      tx.advanceHead(4);
      return null;
    });
    PullQuery onlyMoves = new PullQuery(0, 3, Set.of(), Optional.of(Set.of("u1")), false, Set.of("u1"));
    PullPage page = store.pull(tenant, onlyMoves);
    assertThat(page.records()).isEmpty();
    assertThat(page.moves()).extracting(mv -> mv.move().seq()).containsExactly(1L, 2L, 3L);
    assertThat(page.moves()).extracting(MovedRecord::currentKey).containsOnly(Optional.of("u2"));
    assertThat(page.hasMore()).isTrue();
    PullPage rest = store.pull(tenant, new PullQuery(3, 3, Set.of(), Optional.of(Set.of("u1")), false, Set.of("u1")));
    assertThat(rest.moves()).extracting(mv -> mv.move().seq()).containsExactly(4L);
    assertThat(rest.hasMore()).isFalse();
    assertThat(store.pull(tenant, PullQuery.all(0, 3, Set.of())).hasMore()).isTrue();

    // A move whose record is gone (cleared before a rebuild) went with it.
    store.write(tenant, tx -> {
      tx.clearRecords();
      return null;
    });
    assertThat(store.pull(tenant, onlyMoves).moves()).isEmpty();
  }

  /** A move's current key is empty when the record no longer has one. */
  @Test
  void aMovedRecordWithoutAKeyNowHasAnEmptyCurrentKey() {
    String tenant = newTenant();
    UUID a = rid(1);
    store.write(tenant, tx -> {
      tx.putRecords(List.of(numbered(live("appointments", a, data()), 2)));
      tx.recordMoves(List.of(new ScopeMove(2, "appointments", a, "u1"), new ScopeMove(2, "appointments", rid(9), "u1")));
      tx.advanceHead(2);
      return null;
    });
    assertThat(store.pull(tenant, new PullQuery(0, 10, Set.of(), Optional.of(Set.of()), false, Set.of("u1"))).moves())
        .extracting(MovedRecord::currentKey).containsExactly(Optional.empty(), Optional.empty());
  }

  /** Two takers of one challenge: exactly one gets it, however the race goes; expired ones go too. */
  @Test
  void aChallengeIsTakenAtMostOnceHoweverManyRaceForIt() throws Exception {
    UUID device = UUID.randomUUID();
    Instant now = Instant.parse("2026-03-01T10:15:30.123456Z");
    try (PostgresServerStore wide = PostgresServerStore.open(config.withMaxPoolSize(8))) {
      for (int round = 0; round < 20; round++) {
        String challenge = "c-" + round;
        wide.insertChallenge(new ChallengeRow(device, challenge, now.plusSeconds(60)));
        ExecutorService pool = Executors.newFixedThreadPool(8);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<Optional<ChallengeRow>>> takers = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
          takers.add(pool.submit(() -> {
            go.await();
            return wide.takeChallenge(device, challenge, now);
          }));
        }
        go.countDown();
        int taken = 0;
        for (Future<Optional<ChallengeRow>> f : takers) {
          Optional<ChallengeRow> got = f.get(30, TimeUnit.SECONDS);
          if (got.isPresent()) {
            assertThat(got.get()).isEqualTo(new ChallengeRow(device, challenge, now.plusSeconds(60)));
            taken++;
          }
        }
        pool.shutdown();
        assertThat(taken).as("round %s", round).isEqualTo(1);
      }
    }
    store.insertChallenge(new ChallengeRow(device, "expired", now));
    store.insertChallenge(new ChallengeRow(device, "live", now.plusSeconds(1)));
    store.insertChallenge(new ChallengeRow(device, "kept", now.plusSeconds(1)));
    assertThat(store.takeChallenge(device, "expired", now)).as("expired exactly now").isEmpty();
    assertThat(store.takeChallenge(device, "live", now.plusSeconds(2))).as("expired meanwhile").isEmpty();
    assertThat(store.takeChallenge(device, "kept", now)).as("removed with the expired ones").isEmpty();

    UUID otherDevice = UUID.randomUUID();
    store.insertChallenge(new ChallengeRow(device, "first", now.plusSeconds(60)));
    store.insertChallenge(new ChallengeRow(device, "second", now.plusSeconds(60)));
    store.insertChallenge(new ChallengeRow(otherDevice, "first", now.plusSeconds(60)));
    assertThat(store.takeChallenge(device, "first", now)).isPresent();
    assertThat(store.takeChallenge(device, "second", now)).as("a live one stays when another is taken").isPresent();
    assertThat(store.takeChallenge(otherDevice, "second", now)).as("another device's").isEmpty();
    assertThat(store.takeChallenge(otherDevice, "first", now)).isPresent();
  }

  @Test
  void devicesAreRenewedRevokedOnceAndListedByEnrollmentTime() {
    String tenant = newTenant();
    String other = newTenant();
    Instant at = Instant.parse("2026-03-01T10:15:30.123456Z");
    DeviceRow later = device(tenant, rid(1), at.plusSeconds(5));
    DeviceRow tieB = device(tenant, rid(3), at);
    DeviceRow tieA = device(tenant, rid(2), at);
    insertDevice(later);
    insertDevice(tieB);
    insertDevice(tieA);
    insertDevice(device(other, UUID.randomUUID(), at));
    assertThat(store.devices(tenant)).extracting(DeviceRow::deviceId).containsExactly(rid(2), rid(3), rid(1));
    assertThat(store.findDevice(rid(1))).contains(later);
    assertThat(store.findDevice(UUID.randomUUID())).isEmpty();

    Instant expires = Instant.parse("2026-03-02T10:15:30.123456789Z");
    store.write(tenant, tx -> {
      tx.renewToken(rid(1), "renewed-" + rid(1), expires);
      return null;
    });
    assertThat(store.findDeviceByTokenHash(later.tokenHash())).isEmpty();
    assertThat(store.findDeviceByTokenHash("renewed-" + rid(1))).get()
        .satisfies(d -> assertThat(d.tokenExpiresAt()).isEqualTo(expires.truncatedTo(ChronoUnit.MICROS)));

    assertThat(store.<Boolean>write(other, tx -> tx.revokeDevice(rid(1), at))).as("another tenant's device").isFalse();
    assertThat(store.<Boolean>write(tenant, tx -> tx.revokeDevice(rid(1), at.plusSeconds(10)))).isTrue();
    assertThat(store.<Boolean>write(tenant, tx -> tx.revokeDevice(rid(1), at.plusSeconds(20)))).as("again").isTrue();
    assertThat(store.findDeviceByTokenHash("renewed-" + rid(1))).as("revoked devices are still found").get()
        .satisfies(d -> assertThat(d.revokedAt()).isEqualTo(at.plusSeconds(10)));
    assertThat(store.<Boolean>write(tenant, tx -> tx.revokeDevice(UUID.randomUUID(), at))).isFalse();
  }

  private static DeviceRow device(String tenant, UUID id, Instant enrolledAt) {
    return new DeviceRow(id, tenant, "tablet", "pk", "hash-" + UUID.randomUUID(), enrolledAt, null, null, DeviceRow.DEVICE, "amara",
        enrolledAt.plusSeconds(3600), null);
  }

  /** Users and units are replaced whole; lists keep their order; listings are sorted by id, per tenant. */
  @Test
  void usersAndOrgUnitsAreUpsertedAndListedById() {
    String tenant = newTenant();
    String other = newTenant();
    Instant at = Instant.parse("2026-03-01T10:15:30.123456Z");
    UserRow b = new UserRow(tenant, "b", List.of("supervisor", "fieldWorker"), List.of("u2", "u1"), at, at);
    UserRow a = new UserRow(tenant, "a", List.of(), List.of(), at, at);
    UserRow bAgain = new UserRow(tenant, "b", List.of("auditor"), List.of(), at.plusSeconds(1), at.plusSeconds(2));
    OrgUnitRow root = new OrgUnitRow(tenant, "root", Optional.empty(), "Country", at);
    OrgUnitRow child = new OrgUnitRow(tenant, "district", Optional.of("root"), "District \u00e9", at);
    store.write(tenant, tx -> {
      tx.putUser(b);
      tx.putUser(a);
      tx.putOrgUnit(root);
      tx.putOrgUnit(child);
      return null;
    });
    store.write(other, tx -> {
      tx.putUser(new UserRow(other, "c", List.of("admin"), List.of(), at, at));
      return null;
    });
    assertThat(store.users(tenant)).containsExactly(a, b);
    assertThat(store.findUser(tenant, "b")).contains(b);
    assertThat(store.findUser(other, "b")).isEmpty();
    assertThat(store.orgUnits(tenant)).containsExactly(child, root);
    store.write(tenant, tx -> {
      tx.putUser(bAgain);
      tx.putOrgUnit(new OrgUnitRow(tenant, "district", Optional.empty(), "Moved", at.plusSeconds(1)));
      return null;
    });
    assertThat(store.findUser(tenant, "b")).contains(bAgain);
    assertThat(store.orgUnits(tenant)).first().isEqualTo(new OrgUnitRow(tenant, "district", Optional.empty(), "Moved",
        at.plusSeconds(1)));
    assertThatThrownBy(() -> store.write(other, tx -> {
      tx.putUser(a);
      return null;
    })).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void aScopeSnapshotIsStoredOnceAndKeptApartByTenant() {
    String tenant = newTenant();
    store.putScopeSnapshot(tenant, "s1", Set.of("u1", "u2"));
    store.putScopeSnapshot(tenant, "s1", Set.of("changed"));
    store.putScopeSnapshot(tenant, "empty", Set.of());
    assertThat(store.scopeSnapshot(tenant, "s1")).contains(Set.of("u1", "u2"));
    assertThat(store.scopeSnapshot(tenant, "empty")).contains(Set.of());
    assertThat(store.scopeSnapshot(tenant, "s2")).isEmpty();
    assertThat(store.scopeSnapshot("another", "s1")).isEmpty();
  }

  /** A record's history is its log entries in seq order, to the limit, and nobody else's. */
  @Test
  void theLogOfOneRecordIsItsEntriesInSeqOrder() {
    String tenant = newTenant();
    UUID id = fx.uuid();
    RecordState after = new RecordState(1, false, fx.appointment(), Instant.now(), Map.of());
    store.write(tenant, tx -> {
      tx.appendLog(List.of(entry(1, "appointments", id, after), entry(2, "appointments", fx.uuid(), after),
          entry(3, "subsidy_claims", id, after), entry(4, "appointments", id, null), entry(5, "appointments", id, after)));
      tx.advanceHead(5);
      return null;
    });
    RecordKey key = new RecordKey("appointments", id);
    assertThat(store.recordLog(tenant, key, 10)).extracting(LoggedMutation::seq).containsExactly(1L, 4L, 5L);
    assertThat(store.recordLog(tenant, key, 2)).extracting(LoggedMutation::seq).containsExactly(1L, 4L);
    assertThat(store.recordLog(tenant, key, 0)).isEmpty();
    assertThat(store.recordLog("another", key, 10)).isEmpty();
  }

  /**
   * The write path looks up the records a push creates, then looks them up again for their old
   * scope keys: the second time costs nothing, until the transaction writes them.
   */
  @Test
  void recordsFoundMissingAreNotLookedUpAgainUntilWritten() {
    String tenant = newTenant();
    UUID id = fx.uuid();
    RecordKey key = new RecordKey("appointments", id);
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      counted.write(tenant, tx -> {
        assertThat(cost(executed, () -> assertThat(tx.findRecords(List.of(key))).isEmpty())).isEqualTo(1);
        assertThat(cost(executed, () -> assertThat(tx.findRecords(List.of(key))).isEmpty())).isZero();
        tx.putRecords(List.of(live("appointments", id, data())));
        assertThat(cost(executed, () -> assertThat(tx.findRecords(List.of(key))).containsKey(key))).isEqualTo(1);
        tx.clearRecords();
        assertThat(cost(executed, () -> assertThat(tx.findRecords(List.of(key))).isEmpty())).isEqualTo(1);
        return null;
      });
    }
  }

  private static StoredRecord numbered(StoredRecord r, long seq) {
    return new StoredRecord(r.collection(), r.recordId(), r.version(), r.deleted(), r.data(), seq, r.updatedAt(), r.fieldHlc(),
        r.scopeKey());
  }

  private static ObjectNode data() {
    return Json.mapper().createObjectNode();
  }

  private static UUID rid(int n) {
    return UUID.fromString(String.format("00000000-0000-4000-8000-%012d", n));
  }

  private static StoredRecord live(String collection, UUID recordId, ObjectNode data) {
    return new StoredRecord(collection, recordId, 1, false, data, 1, Instant.now(), Map.of(), null);
  }

  /** Writes the records with seqs 1, 2, ... in list order. */
  private void putRecords(String tenant, List<StoredRecord> rows) {
    List<StoredRecord> numbered = new ArrayList<>();
    for (StoredRecord r : rows) {
      numbered.add(new StoredRecord(r.collection(), r.recordId(), r.version(), r.deleted(), r.data(), numbered.size() + 1L,
          r.updatedAt(), r.fieldHlc(), r.scopeKey()));
    }
    store.write(tenant, tx -> {
      tx.putRecords(numbered);
      tx.advanceHead(numbered.size());
      return null;
    });
  }

  private static List<UUID> ids(List<StoredRecord> records) {
    return records.stream().map(StoredRecord::recordId).toList();
  }

  /** The held mutation as the store keeps it: its time to the microsecond. */
  private static HeldMutation micros(HeldMutation h) {
    return new HeldMutation(h.deviceId(), h.mutation(), h.contentHash(), h.receivedAt().truncatedTo(ChronoUnit.MICROS));
  }

  private DeviceQueue queue(String tenant, UUID device) {
    return store.write(tenant, tx -> tx.deviceQueue(device));
  }

  private Map<UUID, HeldMutation> findHeld(String tenant, java.util.Collection<UUID> mutationIds) {
    return store.write(tenant, tx -> tx.findHeld(mutationIds));
  }

  /** The statements {@code work} executes. */
  private static int cost(AtomicInteger executed, Runnable work) {
    int before = executed.get();
    work.run();
    return executed.get() - before;
  }

  /** The tenant's inbox item as a write transaction sees it. */
  private static Optional<InboxItem> found(PostgresServerStore on, String tenant, UUID id) {
    return on.write(tenant, tx -> tx.findInboxItem(id));
  }

  private Map<UUID, MutationResult> latest(String tenant, java.util.Collection<UUID> mutationIds) {
    return store.write(tenant, tx -> tx.latestOutcomes(mutationIds));
  }

  /** A merged final result, as a resolution gives the device that made the parked change. */
  private MutationResult merged(UUID mutationId, long version, String how) {
    ObjectNode data = fx.appointment().put("weightKg", 12.5);
    data.putArray("tags").add("x").add(2);
    ServerRecord record = new ServerRecord("appointments", fx.uuid(), version, false, data,
        Instant.parse("2026-03-01T10:15:30.123456Z"));
    return MutationResult.merged(mutationId, record, List.of("patientPhone"), how);
  }

  /** A resolution as the inbox service stores it: who, how, and the response to replay. */
  private static ObjectNode resolution(String how) {
    ObjectNode r = Json.mapper().createObjectNode();
    r.put("resolution", how);
    r.put("comment", "called the clinic \u00e9\u2603 \"quoted\"");
    r.put("resolvedBy", UUID.randomUUID().toString());
    r.put("resolvedAt", "2026-03-02T08:00:00.987654Z");
    r.put("idempotencyKey", "k-1");
    ObjectNode response = r.putObject("response");
    response.putObject("item").put("status", "resolved").put("weight", 12.5).putNull("nothing");
    response.putObject("record").put("version", 3).put("deleted", false).putArray("list").add(1).add("two").add(true);
    return r;
  }


  private PostgresServerStore countedStore(AtomicInteger executed) {
    PGSimpleDataSource raw = new PGSimpleDataSource();
    raw.setURL(TestDatabases.jdbcUrl());
    raw.setCurrentSchema(schema);
    return new PostgresServerStore(countingStatements(raw, executed), () -> {});
  }

  private LoggedMutation entry(long seq, String collection, UUID recordId, RecordState after) {
    Mutation m = fx.mutation(collection, recordId, MutationOp.UPDATE, 1, fx.appointment());
    return new LoggedMutation(seq, m, "h", UUID.randomUUID(),
        after == null ? MutationResult.rejected(m.mutationId(), recordId, ErrorDetail.of(ErrorCode.VERSION_CONFLICT, "stale"))
            : MutationResult.applied(m.mutationId(), recordId, after.version()),
        Instant.now(), after);
  }

  private InboxItem inboxItem(String collection, Instant createdAt, String status, String kind) {
    ObjectNode detail = Json.mapper().createObjectNode();
    detail.putObject("base").put("version", 1).set("data", fx.appointment());
    detail.putObject("server").put("version", 2).set("data", fx.appointment());
    detail.putArray("conflictFields").add("patientPhone");
    return new InboxItem(UUID.randomUUID(), kind, status, collection, fx.uuid(), fx.uuid(), UUID.randomUUID(), detail, createdAt,
        null, null);
  }

  private static InboxItem withId(InboxItem i, String id) {
    return new InboxItem(UUID.fromString(id), i.kind(), i.status(), i.collection(), i.recordId(), i.mutationId(), i.deviceId(),
        i.detail(), i.createdAt(), i.resolvedAt(), i.resolution());
  }

  /** A mutation as a version 1 client sent it: without a clock. */
  private Mutation v1Mutation(UUID recordId, MutationOp op, long baseVersion, ObjectNode data) {
    Mutation m = fx.mutation("appointments", recordId, op, baseVersion, data);
    return new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), recordId, op, baseVersion, data, null, m.clientTime());
  }

  /** A log row as the version 1 store wrote it. */
  private static void v1Log(Connection c, long seq, UUID device, Mutation m, MutationResult r, Instant at) throws Exception {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO mutation_log (tenant_id, mutation_id, seq, device_id, collection,"
        + " record_id, op, content_hash, mutation, result, status, received_at) VALUES ('v1', ?, ?, ?, ?, ?, ?, 'h', ?, ?, ?, ?)")) {
      ps.setObject(1, m.mutationId());
      ps.setLong(2, seq);
      ps.setObject(3, device);
      ps.setString(4, m.collection());
      ps.setObject(5, m.recordId());
      ps.setString(6, m.op().wire());
      ps.setString(7, StoreJson.write(m));
      ps.setString(8, StoreJson.write(r));
      ps.setString(9, r.status().wire());
      ps.setObject(10, Sql.timestamp(at));
      ps.executeUpdate();
    }
  }

  /** The claim's holders as a later write transaction of the tenant sees them. */
  private Set<UUID> holders(String tenant, Claim claim) {
    return store.write(tenant, tx -> tx.claimHolders(List.of(claim)).get(claim));
  }

  /** A new appointment the capacity rule does not count (it counts bookings not cancelled). */
  private Mutation cancelledBooking() {
    return fx.create(fx.uuid(), fx.appointment().put("status", "cancelled"));
  }

  private java.util.Map<UUID, LoggedMutation> logged(String tenant, UUID mutationId) {
    return store.write(tenant, tx -> tx.findLogged(List.of(mutationId)));
  }

  private String newTenant() {
    String id = "b-" + UUID.randomUUID();
    assertThat(store.createTenant(new TenantRow(id, Instant.now()))).isTrue();
    return id;
  }

  /**
   * The tenant's projection rows in seq order, whole (field clocks included, which the change
   * feed does not read): the feed gives the keys, a write transaction's key lookup the rows.
   */
  private static List<StoredRecord> projection(PostgresServerStore s, String tenant) {
    List<RecordKey> keys = s.pull(tenant, PullQuery.all(0, 5000, Set.of())).records().stream()
        .map(r -> new RecordKey(r.collection(), r.recordId())).toList();
    Map<RecordKey, StoredRecord> found = s.write(tenant, tx -> tx.findRecords(keys));
    return keys.stream().map(found::get).toList();
  }

  private Caller.Device newDevice() {
    String tenant = newTenant();
    return TestDevices.enroll(tenancy, tenant);
  }

  /** A data source whose statements count every execution into {@code executed}. */
  private static DataSource countingStatements(DataSource target, AtomicInteger executed) {
    return proxy(DataSource.class, target, (method, result) -> method.getName().equals("getConnection")
        ? proxy(Connection.class, (Connection) result, (m, r) -> r instanceof Statement s ? countExecutions(s, executed) : r)
        : result);
  }

  private static Statement countExecutions(Statement s, AtomicInteger executed) {
    Class<? extends Statement> type = s instanceof java.sql.PreparedStatement ? java.sql.PreparedStatement.class : Statement.class;
    return proxy(type.asSubclass(Statement.class), s, (m, r) -> {
      if (m.getName().startsWith("execute")) {
        executed.incrementAndGet();
      }
      return r;
    });
  }

  @FunctionalInterface
  private interface After {
    Object apply(java.lang.reflect.Method method, Object result);
  }

  @SuppressWarnings("unchecked")
  private static <T> T proxy(Class<T> type, Object target, After after) {
    InvocationHandler h = (p, method, args) -> {
      try {
        return after.apply(method, method.invoke(target, args));
      } catch (InvocationTargetException e) {
        throw e.getCause();
      }
    };
    return (T) Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, h);
  }
}
