package org.civicsync.server.events;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.civicsync.server.store.OutboxEvent;
import org.civicsync.server.store.ServerStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes the outbox: reads unpublished rows in order, hands them to the {@link EventPublisher},
 * and marks them published once the broker acknowledged them. A failed batch is counted on its
 * rows and tried again after an exponential backoff with jitter; nothing is skipped, and a row is
 * only marked after its acknowledgement, so a relay that dies between publishing and marking
 * publishes the rows again on its next start and the broker drops the copies (their ids are
 * stable). One instance relays at a time ({@link ServerStore#tryLead}); the others stand by and
 * take over when it goes.
 */
public final class EventRelay implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(EventRelay.class);
  /** The role instances compete for. */
  public static final String ROLE = "event-relay";

  /**
   * @param batch rows published per round
   * @param idle how long to wait for new rows when the outbox is empty (a commit wakes it sooner)
   * @param backoffBase first wait after a failure; doubled per failure up to {@code backoffCap}
   */
  public record Settings(int batch, Duration idle, Duration backoffBase, Duration backoffCap) {
    public static Settings defaults() {
      return new Settings(500, Duration.ofSeconds(1), Duration.ofMillis(500), Duration.ofSeconds(30));
    }
  }

  private final ServerStore store;
  private final EventPublisher publisher;
  private final Clock clock;
  private final Settings settings;
  private final Random random;
  private final Object wake = new Object();
  private final AtomicLong published = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private volatile boolean closed;
  private volatile boolean leading;
  private Thread thread;
  private AutoCloseable commits;

  public EventRelay(ServerStore store, EventPublisher publisher, Clock clock, Settings settings, Random random) {
    this.store = store;
    this.publisher = publisher;
    this.clock = clock;
    this.settings = settings;
    this.random = random;
  }

  /** Starts relaying on a thread of its own; commits wake it. */
  public synchronized EventRelay start() {
    if (thread == null) {
      commits = store.onCommit(n -> nudge());
      thread = new Thread(this::loop, "civicsync-event-relay");
      thread.setDaemon(true);
      thread.start();
    }
    return this;
  }

  /** Events this relay has published (acknowledged by the broker) since it started. */
  public long published() {
    return published.get();
  }

  /** Failed publish rounds since it started. */
  public long failures() {
    return failures.get();
  }

  /** Whether this instance is the one relaying now. */
  public boolean leading() {
    return leading;
  }

  private boolean nudged;

  private void nudge() {
    synchronized (wake) {
      nudged = true;
      wake.notifyAll();
    }
  }

  private void loop() {
    java.util.concurrent.atomic.AtomicReference<Optional<ServerStore.Leadership>> held =
        new java.util.concurrent.atomic.AtomicReference<>(Optional.empty());
    try {
      relay(held);
    } finally {
      // Also when the thread dies: like a process that ends, it lets another instance take over.
      held.get().ifPresent(ServerStore.Leadership::close);
      leading = false;
    }
  }

  private void relay(java.util.concurrent.atomic.AtomicReference<Optional<ServerStore.Leadership>> held) {
    int failed = 0;
    while (!closed) {
      Optional<ServerStore.Leadership> lead = held.get();
      try {
        if (lead.isEmpty() || !lead.get().held()) {
          lead.ifPresent(ServerStore.Leadership::close);
          held.set(Optional.empty());
          lead = store.tryLead(ROLE);
          held.set(lead);
          leading = lead.isPresent();
          if (lead.isEmpty()) {
            pause(Duration.ofSeconds(2), false);
            continue;
          }
        }
        synchronized (wake) {
          nudged = false; // a commit from now on wakes the idle wait below
        }
        List<OutboxEvent> batch = store.unpublishedEvents(settings.batch());
        if (batch.isEmpty()) {
          pause(settings.idle(), true);
          continue;
        }
        try {
          publisher.publish(batch.stream()
              .map(e -> new EventPublisher.Outgoing(e.subject(), e.eventId(), e.payload().getBytes(java.nio.charset.StandardCharsets.UTF_8)))
              .toList());
        } catch (EventPublisher.PublishException e) {
          failures.incrementAndGet();
          store.markPublishFailed(batch, e.getMessage() == null ? e.toString() : e.getMessage());
          Duration wait = backoff(failed++);
          LOG.warn("publishing {} event(s) failed ({}); retrying in {} ms", batch.size(), e.getMessage(), wait.toMillis());
          pause(wait, false);
          continue;
        }
        store.markPublished(batch, clock.instant());
        published.addAndGet(batch.size());
        failed = 0;
      } catch (RuntimeException e) {
        // The store is unreachable, or something unexpected: the rows stay unpublished; try later.
        failures.incrementAndGet();
        Duration wait = backoff(failed++);
        LOG.warn("the event relay failed ({}); retrying in {} ms", e.toString(), wait.toMillis());
        pause(wait, false);
      }
    }
  }

  /** Full jitter: uniform in [base, min(cap, base * 2^n)], so standby instances do not retry in step. */
  private Duration backoff(int n) {
    long base = settings.backoffBase().toMillis();
    long ceiling = Math.min(settings.backoffCap().toMillis(), base << Math.min(n, 20));
    return Duration.ofMillis(base + (long) (random.nextDouble() * Math.max(0, ceiling - base)));
  }

  /** Waits {@code d}; a commit ends the wait early only when {@code wakeable} (never during a backoff). */
  private void pause(Duration d, boolean wakeable) {
    long deadline = System.nanoTime() + d.toNanos();
    synchronized (wake) {
      while (!closed && !(wakeable && nudged)) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return;
        }
        try {
          wake.wait(Math.max(1, left / 1_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          closed = true;
        }
      }
    }
  }

  /** Stops relaying (a round in progress finishes first) and releases the publisher. */
  @Override
  public void close() {
    closed = true;
    nudge();
    Thread t;
    synchronized (this) {
      t = thread;
    }
    if (t != null) {
      try {
        t.join(10_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    try {
      if (commits != null) {
        commits.close();
      }
    } catch (Exception e) {
      LOG.debug("closing the commit subscription", e);
    }
    publisher.close();
  }
}
