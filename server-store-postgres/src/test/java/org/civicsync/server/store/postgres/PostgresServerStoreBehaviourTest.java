package org.civicsync.server.store.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Clock;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
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
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.PushRequest;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.PullPage;
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

  @Test
  void aPushCostsTheSameHandfulOfStatementsWhetherItCarriesOneMutationOrAThousand() {
    AtomicInteger executed = new AtomicInteger();
    PGSimpleDataSource raw = new PGSimpleDataSource();
    raw.setURL(TestDatabases.jdbcUrl());
    raw.setCurrentSchema(schema);
    try (PostgresServerStore counted = new PostgresServerStore(countingStatements(raw, executed), () -> {})) {
      Caller.Device device = newDevice();
      PushService push = new PushService(counted, CATALOG, Clock.systemUTC());

      executed.set(0);
      push.push(device, new PushRequest(List.of(fx.create(fx.uuid()))));
      int forOne = executed.get();

      List<Mutation> thousand = new ArrayList<>();
      for (int i = 0; i < 1000; i++) {
        thousand.add(fx.create(fx.uuid()));
      }
      executed.set(0);
      List<MutationResult> results = push.push(device, new PushRequest(thousand)).results();
      int forThousand = executed.get();

      assertThat(results).allMatch(r -> r.status() == MutationStatus.APPLIED);
      assertThat(forOne).as("statements for a push of one").isBetween(5, 8);
      assertThat(forThousand).as("statements for a push of 1,000").isEqualTo(forOne);
    }
  }

  @Test
  void pullFilteredToSeveralCollectionsReturnsOnlyTheirRecordsInSeqOrder() {
    String tenant = newTenant();
    List<StoredRecord> rows = new ArrayList<>();
    String[] collections = {"a", "b", "c"};
    for (int seq = 1; seq <= 9; seq++) {
      rows.add(new StoredRecord(collections[seq % 3], UUID.randomUUID(), 1, false, fx.appointment(), seq, Instant.now()));
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
    Throwable thrown = org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> store.write(tenant, tx -> {
      tx.appendLog(List.of(new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
          Instant.now())));
      tx.putRecords(List.of(new StoredRecord("appointments", m.recordId(), 1, false, m.data(), 1, Instant.now())));
      tx.advanceHead(1);
      throw boom;
    }));
    assertThat(thrown).isSameAs(boom);
    assertThat(store.head(tenant)).isZero();
    assertThat(store.pull(tenant, 0, 10, Set.of()).records()).isEmpty();
    assertThat(logged(tenant, m.mutationId())).isEmpty();
  }

  @Test
  void aConstraintViolationIsReportedAsABugNotAsAnOutageAndRolledBack() {
    String tenant = newTenant();
    Mutation m = fx.create(fx.uuid());
    LoggedMutation entry = new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
        Instant.now());
    LoggedMutation sameId = new LoggedMutation(2, m, "h", entry.deviceId(), entry.result(), entry.receivedAt());
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
    store.write(tenant, tx -> {
      tx.appendLog(List.of(new LoggedMutation(1, m, "h", UUID.randomUUID(), MutationResult.applied(m.mutationId(), m.recordId(), 1),
          withNanos)));
      tx.putRecords(List.of(new StoredRecord("appointments", m.recordId(), 1, false, m.data(), 1, withNanos)));
      tx.advanceHead(1);
      return null;
    });
    StoredRecord record = store.pull(tenant, 0, 10, Set.of()).records().get(0);
    LoggedMutation logged = logged(tenant, m.mutationId()).get(m.mutationId());
    List<Instant> streamed = new ArrayList<>();
    store.write(tenant, tx -> {
      tx.forEachLogged(e -> streamed.add(e.receivedAt()));
      return null;
    });
    assertThat(record.updatedAt()).isEqualTo(micros);
    assertThat(logged.receivedAt()).isEqualTo(micros);
    assertThat(streamed).containsExactly(micros);
    assertThat(logged.mutation()).isEqualTo(m);
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
