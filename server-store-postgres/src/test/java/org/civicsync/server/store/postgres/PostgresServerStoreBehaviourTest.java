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
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.PushRequest;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.projection.ProjectionRebuilder;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.civicsync.testing.Fixtures;
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

  private final String schema = TestDatabases.freshSchema();
  private PostgresConfig config;
  private PostgresServerStore store;
  private TenancyService tenancy;
  private Fixtures fx;

  @BeforeAll
  void open() {
    config = PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(schema).withMaxPoolSize(1);
    store = PostgresServerStore.open(config);
    tenancy = new TenancyService(store, Clock.systemUTC());
  }

  @AfterAll
  void drop() {
    store.close();
    TestDatabases.dropSchema(schema);
  }

  @BeforeEach
  void fixtures() {
    fx = new Fixtures(System.nanoTime());
  }

  /**
   * A push whose changes fall under no rule (here: appointments created cancelled, which the
   * capacity rule does not count) costs the same statements for one mutation as for a thousand:
   * the counter lock, findLogged, findRecords, appendLog, putRecords, putClaims (which still runs,
   * to release whatever the changed records held), advanceHead, markPushed. That is 8, one more
   * than before the rules (putClaims).
   */
  @Test
  void aPushCostsTheSameHandfulOfStatementsWhetherItCarriesOneMutationOrAThousand() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, new PushRequest(List.of(cancelledBooking())));
      int forOne = executed.get();

      List<Mutation> thousand = new ArrayList<>();
      for (int i = 0; i < 1000; i++) {
        thousand.add(cancelledBooking());
      }
      executed.set(0);
      List<MutationResult> results = push.push(device, new PushRequest(thousand)).results();
      int forThousand = executed.get();

      assertThat(results).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(forOne).as("statements for a push of one").isBetween(5, 8);
      assertThat(forThousand).as("statements for a push of 1,000").isEqualTo(forOne);
    }
  }

  /**
   * Changes a rule counts add only the rule's reads: one lookup of the holders of each claim a
   * change newly takes (the SPI asks for them one claim at a time). Writing the claims of the
   * whole push stays the one statement a push without rules already pays for.
   */
  @Test
  void bookingsCheckTheirSlotsInOneLookupPerPush() {
    AtomicInteger executed = new AtomicInteger();
    try (PostgresServerStore counted = countedStore(executed)) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, new PushRequest(List.of(cancelledBooking())));
      int plain = executed.get();

      executed.set(0);
      push.push(device, new PushRequest(List.of(fx.create(fx.uuid()))));
      int forOne = executed.get();

      List<Mutation> hundred = new ArrayList<>();
      for (int i = 0; i < 100; i++) {
        hundred.add(fx.create(fx.uuid()));
      }
      executed.set(0);
      List<MutationResult> results = push.push(device, new PushRequest(hundred)).results();
      int forHundred = executed.get();

      // An update that leaves the slot alone keeps its claim: no lookup.
      UUID booked = hundred.get(0).recordId();
      executed.set(0);
      MutationResult phone = push.push(device, new PushRequest(List.of(fx.update(booked, 1, Fixtures.patch("patientPhone", "+94770000002")))))
          .results().get(0);
      int forUpdate = executed.get();

      assertThat(results).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(phone.status()).isEqualTo(MutationStatus.APPLIED);
      assertThat(forOne).as("statements for one booking").isEqualTo(plain + 1);
      assertThat(forHundred).as("statements for 100 bookings: their slots are looked up together").isEqualTo(plain + 1);
      assertThat(forUpdate).as("statements for an update keeping the slot").isEqualTo(plain);
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
      push.push(device, new PushRequest(List.of(fx.create(fx.uuid()))));
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
      push.push(device, new PushRequest(creates));
      push.push(device, new PushRequest(updates));

      List<Mutation> stale = new ArrayList<>();
      for (int i = 0; i < ids.size(); i++) {
        stale.add(fx.update(ids.get(i), 1, Fixtures.patch("patientPhone", "+9477999" + (1000 + i))));
      }
      stale.add(fx.create(fx.uuid()));
      executed.set(0);
      List<MutationResult> results = push.push(device, new PushRequest(stale)).results();
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
        List<StoredRecord> before = migrated.pull(tenant, 0, 100, Set.of()).records();
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

        assertThat(new ProjectionRebuilder(migrated, CATALOG).rebuild(tenant)).isEqualTo(2);
        assertThat(migrated.pull(tenant, 0, 100, Set.of()).records())
            .usingRecursiveFieldByFieldElementComparator().containsExactlyElementsOf(before);
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
      rows.add(new StoredRecord(collections[seq % 3], UUID.randomUUID(), 1, false, fx.appointment(), seq, Instant.now(), Map.of()));
    }
    store.write(tenant, tx -> {
      tx.putRecords(rows);
      tx.advanceHead(9);
      return null;
    });
    PullPage page = store.pull(tenant, 2, 3, Set.of("a", "c"));
    assertThat(page.records()).extracting(StoredRecord::seq).containsExactly(3L, 5L, 6L);
    assertThat(page.hasMore()).isTrue();
    PullPage rest = store.pull(tenant, 6, 3, Set.of("a", "c"));
    assertThat(rest.records()).extracting(StoredRecord::seq).containsExactly(8L, 9L);
    assertThat(rest.hasMore()).isFalse();
  }

  @Test
  void aRestartedStoreKeepsEverythingAndReplaysTheFirstResult() {
    Caller.Device device = newDevice();
    Mutation create = fx.create(fx.uuid());
    MutationResult first = new PushService(store, CATALOG, Clock.systemUTC()).push(device, new PushRequest(List.of(create)))
        .results().get(0);
    long head = store.head(device.tenantId());

    try (PostgresServerStore reopened = PostgresServerStore.open(config.withMaxPoolSize(2))) {
      MutationResult again = new PushService(reopened, CATALOG, Clock.systemUTC())
          .push(device, new PushRequest(List.of(create))).results().get(0);
      assertThat(again).isEqualTo(first.asReplay());
      assertThat(reopened.head(device.tenantId())).isEqualTo(head);
      assertThat(reopened.pull(device.tenantId(), 0, 10, Set.of()).records()).hasSize(1);
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
    assertThat(store.pull(tenant, 0, 10, Set.of()).records()).isEmpty();
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
      tx.openInboxItems(List.of(new InboxItem(UUID.randomUUID(), "conflict", "open", "appointments", m.recordId(), null, null,
          fx.appointment(), withNanos)));
      tx.advanceHead(1);
      return null;
    });
    StoredRecord record = store.pull(tenant, 0, 10, Set.of()).records().get(0);
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

  @Test
  void redeemingAnEnrollmentCodeReturnsItAsItWasBeforeThatUse() {
    String tenant = newTenant();
    Instant now = Instant.now();
    String hash = "hash-" + UUID.randomUUID();
    store.insertEnrollmentCode(new EnrollmentCodeRow(hash, tenant, null, now, now.plusSeconds(60), 2, 0));
    assertThat(store.redeemEnrollmentCode(hash, now)).get().satisfies(c -> {
      assertThat(c.uses()).isZero();
      assertThat(c.label()).isNull();
    });
    assertThat(store.redeemEnrollmentCode(hash, now)).get().extracting(EnrollmentCodeRow::uses).isEqualTo(1);
    assertThat(store.redeemEnrollmentCode(hash, now)).as("used up").isEmpty();
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

  // ---------------------------------------------------------------- helpers

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
    return new InboxItem(UUID.randomUUID(), kind, status, collection, fx.uuid(), fx.uuid(), UUID.randomUUID(), detail, createdAt);
  }

  private static InboxItem withId(InboxItem i, String id) {
    return new InboxItem(UUID.fromString(id), i.kind(), i.status(), i.collection(), i.recordId(), i.mutationId(), i.deviceId(),
        i.detail(), i.createdAt());
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

  private Caller.Device newDevice() {
    String tenant = newTenant();
    String code = tenancy.issueEnrollmentCode(tenant, new EnrollmentCodeRequest(null, null, null)).code();
    String token = tenancy.enroll(new EnrollRequest(code, "tablet", null)).token();
    return (Caller.Device) tenancy.authenticate(java.util.Optional.of(token));
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
