package org.civicsync.server.app.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicReference;
import org.civicsync.contracts.MutationResult;
import org.civicsync.server.events.EventRelay;
import org.civicsync.server.realtime.StreamHub;
import org.civicsync.server.store.ServerStore;

/**
 * Every metric the server exposes. Figures that need the database (the outbox, held mutations,
 * open inbox items) are read at most every few seconds, whatever the scrape rate, so scraping
 * cannot load the store.
 */
public final class ServerMetrics {
  private static final Duration STORE_READ_EVERY = Duration.ofSeconds(5);

  private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final DistributionSummary batchSize;
  private final Counter bytesIn;
  private final Counter bytesOut;
  private final Counter pullChanges;
  private final Timer writeWait;
  private final Timer writeHeld;
  private final ServerStore store;
  private final Clock clock;
  private final AtomicReference<Snapshot> snapshot = new AtomicReference<>();

  private record Snapshot(long at, ServerStore.Waiting waiting, ServerStore.EventBacklog backlog) {}

  public ServerMetrics(ServerStore store, StreamHub hub, Optional<EventRelay> relay, Clock clock) {
    this.store = store;
    this.clock = clock;
    new JvmMemoryMetrics().bindTo(registry);
    new JvmGcMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ClassLoaderMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    batchSize = DistributionSummary.builder("civicsync.push.batch.size").description("Mutations per push request")
        .baseUnit("mutations").publishPercentileHistogram().maximumExpectedValue(10_000.0).register(registry);
    bytesIn = Counter.builder("civicsync.http.request.body").description("Request body bytes as received (compressed when the client compressed)")
        .baseUnit("bytes").register(registry);
    bytesOut = Counter.builder("civicsync.http.response.body").description("Response body bytes as sent (compressed when the response was)")
        .baseUnit("bytes").register(registry);
    pullChanges = Counter.builder("civicsync.pull.changes").description("Changes returned by pulls").register(registry);
    writeWait = Timer.builder("civicsync.store.write.wait").description("Time a committed write waited for its tenant's write lock")
        .publishPercentileHistogram().register(registry);
    writeHeld = Timer.builder("civicsync.store.write.held").description("Time a committed write held its tenant's write lock (work and commit)")
        .publishPercentileHistogram().register(registry);
    Gauge.builder("civicsync.streams.open", hub, StreamHub::openStreams).description("Live streams open on this instance").register(registry);
    Gauge.builder("civicsync.holds.pending", this, m -> m.read().waiting().heldMutations())
        .description("Mutations held behind a gap in their device's deviceSeq, every tenant").register(registry);
    Gauge.builder("civicsync.inbox.open", this, m -> m.read().waiting().openInboxItems())
        .description("Open supervisor inbox items, every tenant").register(registry);
    Gauge.builder("civicsync.outbox.pending", this, m -> m.read().backlog().pending())
        .description("Domain events not yet published").register(registry);
    Gauge.builder("civicsync.outbox.lag", this, m -> m.read().backlog().oldest()
            .map(o -> Math.max(0, Duration.between(o, clock.instant()).toMillis() / 1000.0)).orElse(0.0))
        .description("Age of the oldest unpublished domain event").baseUnit("seconds").register(registry);
    if (store.poolStats().isPresent()) {
      Gauge.builder("civicsync.store.pool.active", store, x -> x.poolStats().map(p -> p.active()).orElse(0))
          .description("Store connections in use").register(registry);
      Gauge.builder("civicsync.store.pool.idle", store, x -> x.poolStats().map(p -> p.idle()).orElse(0))
          .description("Store connections idle in the pool").register(registry);
      Gauge.builder("civicsync.store.pool.max", store, x -> x.poolStats().map(p -> p.max()).orElse(0))
          .description("The pool's size limit").register(registry);
      Gauge.builder("civicsync.store.pool.waiting", store, x -> x.poolStats().map(p -> p.waiting()).orElse(0))
          .description("Requests waiting for a store connection").register(registry);
    }
    relay.ifPresent(r -> {
      FunctionCounter.builder("civicsync.events.published", r, EventRelay::published).description("Domain events this instance published")
          .register(registry);
      FunctionCounter.builder("civicsync.events.publish.failures", r, EventRelay::failures).description("Failed publish rounds")
          .register(registry);
      Gauge.builder("civicsync.events.relay.leading", r, x -> x.leading() ? 1 : 0).description("1 when this instance relays the outbox")
          .register(registry);
    });
  }

  private Snapshot read() {
    long now = System.nanoTime();
    Snapshot s = snapshot.get();
    if (s == null || now - s.at() > STORE_READ_EVERY.toNanos()) {
      s = new Snapshot(now, store.waiting(), store.eventBacklog());
      snapshot.set(s);
    }
    return s;
  }

  /** Records each committed write's time waiting for and holding its tenant's lock. */
  public org.civicsync.server.audit.WriteTimes writeTimes() {
    return (waited, held) -> {
      writeWait.record(waited, java.util.concurrent.TimeUnit.NANOSECONDS);
      writeHeld.record(held, java.util.concurrent.TimeUnit.NANOSECONDS);
    };
  }

  /** A finished request: its route template (never the concrete path: no ids or personal data in labels). */
  public void request(String method, String route, int status, long nanos) {
    Timer.builder("civicsync.http.requests").description("HTTP requests by route and status").tag("method", method).tag("route", route)
        .tag("status", Integer.toString(status)).publishPercentileHistogram().register(registry)
        .record(Duration.ofNanos(nanos));
  }

  /** Body bytes of one request as received and of its response as sent (after compression). */
  public void bytes(long in, long out) {
    if (in > 0) {
      bytesIn.increment(in);
    }
    if (out > 0) {
      bytesOut.increment(out);
    }
  }

  /** A push that was answered: one count per result status, and its size. */
  public void pushed(List<MutationResult> results) {
    batchSize.record(results.size());
    // One meter lookup per outcome, not per mutation: a push carries hundreds.
    Map<List<String>, Long> byOutcome = new java.util.HashMap<>();
    for (MutationResult r : results) {
      byOutcome.merge(List.of(r.status().wire(), Boolean.toString(Boolean.TRUE.equals(r.replayed()))), 1L, Long::sum);
    }
    byOutcome.forEach((k, n) -> Counter.builder("civicsync.mutations").description("Mutations answered, by status")
        .tag("status", k.get(0)).tag("replayed", k.get(1)).register(registry).increment(n));
  }

  /** Changes a pull returned. */
  public void pulled(int changes) {
    pullChanges.increment(changes);
  }

  /** The Prometheus text exposition. */
  public String scrape() {
    return registry.scrape();
  }

  /**
   * Counts the bytes that cross the HTTP server's connections, as sent and received on the wire
   * (after compression, headers included). Jetty adds a connection's bytes when it closes, so
   * long-lived connections show up late; devices on poor links reconnect often.
   */
  public void bindConnections(org.eclipse.jetty.server.Server server) {
    org.eclipse.jetty.io.ConnectionStatistics stats = new org.eclipse.jetty.io.ConnectionStatistics();
    // Connections take their listeners from the connector's event listeners when they are made.
    org.eclipse.jetty.util.component.LifeCycle.start(stats);
    for (org.eclipse.jetty.server.Connector c : server.getConnectors()) {
      c.addEventListener(stats);
    }
    FunctionCounter.builder("civicsync.http.wire.received", stats, org.eclipse.jetty.io.ConnectionStatistics::getReceivedBytes)
        .description("Bytes received on closed connections").baseUnit("bytes").register(registry);
    FunctionCounter.builder("civicsync.http.wire.sent", stats, org.eclipse.jetty.io.ConnectionStatistics::getSentBytes)
        .description("Bytes sent on closed connections").baseUnit("bytes").register(registry);
    Gauge.builder("civicsync.http.connections.open", stats, org.eclipse.jetty.io.ConnectionStatistics::getConnections)
        .description("Open HTTP connections").register(registry);
  }
}
