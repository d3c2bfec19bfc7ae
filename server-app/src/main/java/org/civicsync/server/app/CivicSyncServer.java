package org.civicsync.server.app;

import io.javalin.Javalin;
import java.time.Clock;
import java.util.Optional;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.collections.DefinitionFiles;
import org.civicsync.server.pull.PullService;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.tenancy.TenancyService;

/** A running CivicSync server: store, services and HTTP, wired from a {@link ServerConfig}. */
public final class CivicSyncServer implements AutoCloseable {
  /** Tenant that {@code serve --demo} creates. */
  public static final String DEMO_TENANT = "demo";

  private final ServerStore store;
  private final Javalin http;
  private final Optional<String> generatedAdminToken;
  private final Optional<EnrollmentCode> demoCode;
  private final java.util.concurrent.ScheduledExecutorService sweeper;
  private final org.civicsync.server.app.live.EventStreams streams;
  private final HttpApi api;
  private final org.civicsync.server.app.metrics.TrafficMeter traffic;
  private final Optional<org.civicsync.server.events.EventRelay> relay;

  private CivicSyncServer(ServerStore store, Javalin http, HttpApi api, org.civicsync.server.app.live.EventStreams streams,
      Optional<org.civicsync.server.events.EventRelay> relay, org.civicsync.server.app.metrics.TrafficMeter traffic, Optional<String> adminToken,
      Optional<EnrollmentCode> demoCode, java.util.concurrent.ScheduledExecutorService sweeper) {
    this.streams = streams;
    this.relay = relay;
    this.api = api;
    this.traffic = traffic;
    this.store = store;
    this.http = http;
    this.generatedAdminToken = adminToken;
    this.demoCode = demoCode;
    this.sweeper = sweeper;
  }

  /** Opens the store, loads collections and starts listening. */
  public static CivicSyncServer start(ServerConfig config) {
    // Microsecond ticks: what PostgreSQL's timestamptz holds, so every store reports the same times.
    return start(config, Clock.tick(Clock.systemUTC(), java.time.Duration.ofNanos(1_000)));
  }

  static CivicSyncServer start(ServerConfig config, Clock clock) {
    CollectionCatalog catalog = DefinitionFiles.load(config.collectionsDir());
    ServerStore store = Stores.open(config);
    org.civicsync.server.app.live.EventStreams streams = null;
    Optional<org.civicsync.server.events.EventRelay> relay = Optional.empty();
    org.civicsync.server.app.metrics.TrafficMeter traffic = null;
    try {
      java.util.List<String> adopted = org.civicsync.server.audit.AuditAdoption.adoptAll(store, clock);
      if (!adopted.isEmpty()) {
        // Data from before the audit chain also predates scope keys: rebuild those projections.
        org.civicsync.server.projection.ProjectionRebuilder rebuilder = new org.civicsync.server.projection.ProjectionRebuilder(store, catalog);
        adopted.forEach(rebuilder::rebuild);
        org.slf4j.LoggerFactory.getLogger(CivicSyncServer.class).info("audit chain started, projection rebuilt for {} tenant(s) with earlier data",
            adopted.size());
      }
      // With NATS configured every committed change also goes to the outbox, in its own
      // transaction, for the relay to publish; without it no outbox rows are written at all.
      // Every service wraps this one and keeps its settings; the metrics, made below, learn each
      // write's lock times through the reference.
      java.util.concurrent.atomic.AtomicReference<org.civicsync.server.audit.WriteTimes> writeTimes =
          new java.util.concurrent.atomic.AtomicReference<>(org.civicsync.server.audit.WriteTimes.NONE);
      ServerStore writes = org.civicsync.server.audit.AuditedStore.wrap(store, catalog, clock).withDomainEvents(config.nats().isPresent())
          .withWriteTimes((waited, held) -> writeTimes.get().written(waited, held));
      TenancyService tenancy = new TenancyService(writes, clock, config.security().tokenTtl());
      Optional<String> generated = tenancy.ensureAdminToken(config.adminToken());
      Optional<EnrollmentCode> demoCode = Optional.empty();
      if (config.demo()) {
        tenancy.ensureTenant(DEMO_TENANT);
        provisionDemo(tenancy);
        demoCode = Optional.of(tenancy.issueEnrollmentCode(DEMO_TENANT, new EnrollmentCodeRequest(DEMO_USER, "demo", 24, 20)));
      }
      PushService push = new PushService(writes, catalog, clock, config.maxClockSkew(), javaRules(), config.holdWindow());
      org.civicsync.server.realtime.StreamHub hub = new org.civicsync.server.realtime.StreamHub(writes, catalog);
      streams = new org.civicsync.server.app.live.EventStreams(hub, config.streamHeartbeat());
      relay = config.nats().map(n -> new org.civicsync.server.events.EventRelay(writes,
          org.civicsync.server.nats.NatsPublisher.connect(n), clock, org.civicsync.server.events.EventRelay.Settings.defaults(),
          new java.security.SecureRandom()).start());
      org.civicsync.server.app.metrics.ServerMetrics metrics = new org.civicsync.server.app.metrics.ServerMetrics(writes, hub, relay, clock);
      writeTimes.set(metrics.writeTimes());
      traffic = new org.civicsync.server.app.metrics.TrafficMeter(writes, clock);
      HttpApi api = new HttpApi(writes, catalog, tenancy, push,
          new PullService(writes, catalog, clock), new org.civicsync.server.inbox.InboxService(writes, catalog, clock, javaRules()),
          new org.civicsync.server.records.RecordsService(writes, catalog, push, clock),
          config.maxBodyBytes(), clock, config.security(), org.civicsync.server.app.web.WebApp.of(config.webDir()), streams,
          metrics, traffic);
      Javalin http = HttpApi.create(api, config.host(), config.port()).start();
      metrics.bindConnections(http.jettyServer().server());
      java.util.concurrent.ScheduledExecutorService sweeper = startSweeper(writes, push, tenancy, config, clock);
      org.civicsync.server.app.metrics.TrafficMeter meter = traffic;
      sweeper.scheduleWithFixedDelay(meter::flush, 10, 10, java.util.concurrent.TimeUnit.SECONDS);
      return new CivicSyncServer(store, http, api, streams, relay, traffic, generated, demoCode, sweeper);
    } catch (RuntimeException e) {
      if (streams != null) {
        streams.close();
      }
      relay.ifPresent(org.civicsync.server.events.EventRelay::close);
      store.close();
      throw e;
    }
  }

  /**
   * Once a minute, forces through the held mutations of devices whose hold window has ended: a
   * device that never pushes again must not keep its later changes waiting for ever.
   */
  private static java.util.concurrent.ScheduledExecutorService startSweeper(ServerStore store, PushService push, TenancyService tenancy,
      ServerConfig config, Clock clock) {
    java.util.concurrent.ScheduledExecutorService s = java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "civicsync-sweeper");
      t.setDaemon(true);
      return t;
    });
    s.scheduleWithFixedDelay(() -> {
      try {
        for (org.civicsync.server.store.DeviceKey d : store.devicesWithHoldsBefore(clock.instant().minus(config.holdWindow()))) {
          // Held changes are decided with their sender's access as it is now (a revoked device's too:
          // revocation stops new pushes, not what was accepted before).
          store.findDevice(d.deviceId()).ifPresent(row -> push.releaseExpired(d, tenancy.accessOf(row)));
        }
      } catch (RuntimeException e) {
        // Logged and retried next minute; a sweep changes nothing unless it commits.
        org.slf4j.LoggerFactory.getLogger(CivicSyncServer.class).warn("hold sweep failed: {}", e.toString());
      }
    }, 1, 1, java.util.concurrent.TimeUnit.MINUTES);
    org.civicsync.server.compaction.Compactor compactor = new org.civicsync.server.compaction.Compactor(store, clock, config.compactionHorizon());
    s.scheduleWithFixedDelay(() -> compactOnce(store, compactor), COMPACTION_DELAY.toMinutes(), COMPACTION_PERIOD.toMinutes(),
        java.util.concurrent.TimeUnit.MINUTES);
    return s;
  }

  /** Compaction starts this long after the server, then runs once per period. */
  static final java.time.Duration COMPACTION_DELAY = java.time.Duration.ofMinutes(10);
  static final java.time.Duration COMPACTION_PERIOD = java.time.Duration.ofHours(24);

  /** One compaction run on the instance that holds the compaction role; the others skip it. */
  static void compactOnce(ServerStore store, org.civicsync.server.compaction.Compactor compactor) {
    try {
      Optional<ServerStore.Leadership> lead = store.tryLead("compaction");
      if (lead.isEmpty()) {
        return;
      }
      try {
        compactor.compactAll();
      } finally {
        lead.get().close();
      }
    } catch (RuntimeException e) {
      // Logged and tried again next period; each window commits or changes nothing.
      org.slf4j.LoggerFactory.getLogger(CivicSyncServer.class).warn("compaction failed: {}", e.toString());
    }
  }

  /** The demo user devices enroll for with the printed code. */
  static final String DEMO_USER = "demo-nurse";

  /**
   * A small org tree (country, province, two clinics) and one user with the fieldWorker and
   * supervisor roles for the province, so the README's first push is in scope.
   */
  private static void provisionDemo(TenancyService tenancy) {
    tenancy.putOrgUnit(DEMO_TENANT, "lk", new org.civicsync.contracts.OrgUnitRequest(null, "Sri Lanka"));
    tenancy.putOrgUnit(DEMO_TENANT, "uva", new org.civicsync.contracts.OrgUnitRequest("lk", "Uva Province"));
    tenancy.putOrgUnit(DEMO_TENANT, "clinic-badulla-03", new org.civicsync.contracts.OrgUnitRequest("uva", "Badulla MOH clinic 3"));
    tenancy.putOrgUnit(DEMO_TENANT, "clinic-bandarawela-01", new org.civicsync.contracts.OrgUnitRequest("uva", "Bandarawela clinic 1"));
    tenancy.putUser(DEMO_TENANT, DEMO_USER, new org.civicsync.contracts.UserRequest(DEMO_USER,
        java.util.List.of(org.civicsync.core.access.Role.FIELD_WORKER, org.civicsync.core.access.Role.SUPERVISOR), java.util.List.of("uva")), true);
  }

  /** The deployment's Java rules, found with {@link java.util.ServiceLoader}. */
  private static java.util.List<org.civicsync.server.rules.RecordRule> javaRules() {
    java.util.List<org.civicsync.server.rules.RecordRule> out = new java.util.ArrayList<>();
    java.util.ServiceLoader.load(org.civicsync.server.rules.RecordRule.class).forEach(out::add);
    return out;
  }

  /** The store this server runs on (for tests that act on it directly, e.g. to compact as if time had passed). */
  ServerStore store() {
    return store;
  }

  /** The port actually bound (useful with port 0). */
  public int port() {
    return http.port();
  }

  /** The admin token when this start generated it; shown once. */
  public Optional<String> generatedAdminToken() {
    return generatedAdminToken;
  }

  /** How long a shutdown waits for requests in flight. */
  static final java.time.Duration SHUTDOWN_GRACE = java.time.Duration.ofSeconds(30);

  /** Writes the traffic counted so far to the store (a timer does it every 10 s). */
  void flushTraffic() {
    traffic.flush();
  }

  /** The HTTP API (for tests of shutdown). */
  HttpApi api() {
    return api;
  }

  /** Requests being handled now (for tests of shutdown). */
  int inFlight() {
    return api.inFlight();
  }

  /** The domain-event relay, when NATS is configured. */
  public Optional<org.civicsync.server.events.EventRelay> relay() {
    return relay;
  }

  /** The enrollment code demo mode issued. */
  public Optional<EnrollmentCode> demoEnrollmentCode() {
    return demoCode;
  }

  /** Stops accepting, lets in-flight requests finish, closes the store. */
  @Override
  public void close() {
    sweeper.shutdownNow();
    // Streams first: their requests never end on their own, and their devices reconnect elsewhere.
    streams.close();
    // Then refuse new requests and let those in flight (pushes committing) finish.
    try {
      if (!api.drain(SHUTDOWN_GRACE)) {
        org.slf4j.LoggerFactory.getLogger(CivicSyncServer.class).warn("stopping with requests still in flight after {} s",
            SHUTDOWN_GRACE.toSeconds());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    http.stop();
    traffic.flush();
    // After the HTTP server: every push that committed has its outbox rows; the relay publishes
    // what it can in its current round, and a restart publishes the rest.
    relay.ifPresent(org.civicsync.server.events.EventRelay::close);
    store.close();
  }
}
