package org.civicsync.server.realtime;

import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.civicsync.core.access.Action;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.server.store.CommitNotice;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.tenancy.Caller;

/**
 * Fans commit notices out to the open streams of devices. A stream hears of a commit when it
 * wrote a record the device's user may read (its collection readable by the user's roles, its
 * scope key — or the key it moved away from — in the user's scope), or gave the device an
 * outcome. What a stream is told is only "there is more, up to this head": the device then pulls
 * with its own cursor, which stays the one source of truth.
 *
 * <p>A stream's user is resolved when it opens; a change of the user's roles or org units reaches
 * it when the device reconnects (streams are meant to be reopened now and then anyway). A device
 * revoked on any instance has its streams ended at once.
 */
public final class StreamHub implements AutoCloseable {
  private final CollectionCatalog catalog;
  private final Map<String, Set<Stream>> byTenant = new ConcurrentHashMap<>();
  private final AutoCloseable subscription;
  private volatile boolean closed;

  public StreamHub(ServerStore store, CollectionCatalog catalog) {
    this.catalog = catalog;
    this.subscription = store.onCommit(this::dispatch);
  }

  /** Opens a stream for the device; close it when the connection ends. */
  public Stream open(Caller.Device device, long head) {
    Stream s = new Stream(device, head);
    byTenant.computeIfAbsent(device.tenantId(), t -> ConcurrentHashMap.newKeySet()).add(s);
    if (closed) {
      s.close();
    }
    return s;
  }

  /** Streams open now, on this instance. */
  public int openStreams() {
    return byTenant.values().stream().mapToInt(Set::size).sum();
  }

  private void dispatch(CommitNotice notice) {
    Set<Stream> streams = byTenant.get(notice.tenantId());
    if (streams == null) {
      return;
    }
    for (Stream s : streams) {
      if (notice.revoked().contains(s.device.deviceId())) {
        s.close(); // a revoked device is shut out at once, not at its next reconnect
      } else if (concerns(notice, s.device)) {
        s.offer(notice.head(), notice.committedAt());
      }
    }
  }

  private boolean concerns(CommitNotice n, Caller.Device d) {
    if (n.everything() || n.outcomesFor().contains(d.deviceId())) {
      return true;
    }
    for (CommitNotice.Touch t : n.touched()) {
      Optional<CollectionSchema> schema = catalog.find(t.collection());
      if (schema.isEmpty() || !d.access().may(schema.get(), Action.READ)) {
        continue;
      }
      // A record of a scoped collection without a key ("") is in nobody's scope but the unrestricted.
      if (schema.get().scopeField().isEmpty() || d.access().scope().covers(t.scopeKey().orElse(""))) {
        return true;
      }
    }
    return false;
  }

  /** Ends every stream (shutdown) and stops listening. */
  @Override
  public void close() {
    closed = true;
    byTenant.values().forEach(set -> set.forEach(Stream::close));
    try {
      subscription.close();
    } catch (Exception e) {
      // Nothing to do: the store is going away too.
    }
  }

  /**
   * What a stream tells its device: the tenant's head after a commit that concerns it, and when
   * that commit was made (changes folded into one are told with the newest one's time).
   */
  public record Change(long head, java.time.Instant committedAt) {}

  /** One device's open stream: the newest head it has not been told of yet. */
  public final class Stream implements AutoCloseable {
    private final Caller.Device device;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private long pending;
    private java.time.Instant pendingAt = java.time.Instant.EPOCH;
    private long told;
    private boolean ended;

    private Stream(Caller.Device device, long head) {
      this.device = device;
      this.told = head;
      this.pending = head;
    }

    void offer(long head, java.time.Instant committedAt) {
      lock.lock();
      try {
        if (head > pending) {
          pending = head;
          pendingAt = committedAt;
          changed.signalAll();
        }
      } finally {
        lock.unlock();
      }
    }

    /**
     * Waits up to {@code wait} for a change the device has not been told of. Returns it
     * (changes that came meanwhile are folded into one); empty on timeout or when the stream
     * ended ({@link #ended}).
     */
    public Optional<Change> next(Duration wait) throws InterruptedException {
      long deadline = System.nanoTime() + wait.toNanos();
      lock.lock();
      try {
        while (!ended && pending <= told) {
          long left = deadline - System.nanoTime();
          if (left <= 0) {
            return Optional.empty();
          }
          changed.awaitNanos(left);
        }
        if (ended) {
          return Optional.empty();
        }
        told = pending;
        return Optional.of(new Change(told, pendingAt));
      } finally {
        lock.unlock();
      }
    }

    public boolean ended() {
      lock.lock();
      try {
        return ended;
      } finally {
        lock.unlock();
      }
    }

    @Override
    public void close() {
      lock.lock();
      try {
        ended = true;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
      Set<Stream> set = byTenant.get(device.tenantId());
      if (set != null) {
        set.remove(this);
      }
    }
  }
}
