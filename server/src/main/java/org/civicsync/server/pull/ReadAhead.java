package org.civicsync.server.pull;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Semaphore;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.ServerStore;

/**
 * Reads the next page of a feed while the current one is on its way to the device.
 *
 * <p>A device paging through an initial sync asks for page n+1 only once page n has arrived and
 * been read, so without this the database sits idle while the server writes a page and the device
 * reads it, and the device waits while the database reads the next one. After serving a page that
 * has more behind it, {@link PullService} starts the query of the next one here (and, once that is
 * read, of the one after it); the request for it takes the result instead of querying again.
 *
 * <p>Serving a page read a moment before its request is serving that request a moment earlier: the
 * feed is ordered by seq and the store only hands out gap-free prefixes of it, so a page read at
 * time t is still a correct page at any later time (the changes committed since come in later
 * pages), except the last one: a page read ahead that ends the feed is read again when it is asked
 * for, so that a download never ends on a view older than its last request (a device that pushed
 * and then pulls sees its own commit). Everything that depends on the request — authentication,
 * the cursor's checks against the head and the compaction watermark, the caller's roles and scope
 * — is still decided when the request arrives; roles and scope are part of the query, so a page
 * read for other rights is never taken. A page not taken within {@link #TTL_NANOS} is dropped, as is a read that failed (the
 * request then queries as usual). At most {@link #MAX_PAGES} pages are held (about half a megabyte
 * each at 1,000 records) and {@link #MAX_RUNNING} read at once, so read-ahead never takes more than
 * that of the database's connections.
 */
final class ReadAhead {
  static final int MAX_PAGES = 16;
  static final int MAX_RUNNING = 2;
  static final long TTL_NANOS = 10_000_000_000L;

  private record Key(String tenant, PullQuery query) {}

  /** A page read or being read; {@code followed} once the page after it has been asked for too. */
  private record Held(CompletableFuture<PullPage> page, long expiresAt, java.util.concurrent.atomic.AtomicBoolean followed) {}

  private final ServerStore store;
  private final Executor executor;
  private final Semaphore running = new Semaphore(MAX_RUNNING);
  private final ConcurrentHashMap<Key, Held> pages = new ConcurrentHashMap<>();

  ReadAhead(ServerStore store, Executor executor) {
    this.store = store;
    this.executor = executor;
  }

  /** The page read ahead for this query, waiting for its read if it is still running; empty if none (or it failed). */
  Optional<PullPage> take(String tenant, PullQuery query) {
    dropExpired(System.nanoTime());
    Held held = pages.remove(new Key(tenant, query));
    if (held == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(held.page().get());
    } catch (ExecutionException failed) {
      return Optional.empty();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return Optional.empty();
    }
  }

  private void dropExpired(long now) {
    pages.values().removeIf(h -> now - h.expiresAt() > 0);
  }

  /**
   * Starts reading this page unless it is held already or read-ahead is at its limits; once it is
   * read, also the page after it, which {@code after} works out from it (empty: none). So while
   * the device reads page n, pages n+1 and n+2 are being read: the database is never left waiting
   * for the round trips of the next request.
   */
  void start(String tenant, PullQuery query, java.util.function.Function<PullPage, Optional<PullQuery>> after) {
    Held held = read(tenant, query);
    if (held != null && held.followed().compareAndSet(false, true)) {
      held.page().thenAccept(page -> after.apply(page).ifPresent(next -> read(tenant, next)));
    }
  }

  /** The page held or being read for this query, reading it if there is room; null if there is none. */
  private Held read(String tenant, PullQuery query) {
    long now = System.nanoTime();
    dropExpired(now);
    Key key = new Key(tenant, query);
    Held held = pages.get(key);
    if (held != null || pages.size() >= MAX_PAGES || !running.tryAcquire()) {
      return held;
    }
    boolean[] started = {false};
    held = pages.computeIfAbsent(key, k -> {
      started[0] = true;
      CompletableFuture<PullPage> f = CompletableFuture.supplyAsync(() -> store.pull(tenant, query), executor);
      f.whenComplete((page, failure) -> running.release());
      return new Held(f, now + TTL_NANOS, new java.util.concurrent.atomic.AtomicBoolean());
    });
    if (!started[0]) {
      running.release();
    }
    return held;
  }
}
