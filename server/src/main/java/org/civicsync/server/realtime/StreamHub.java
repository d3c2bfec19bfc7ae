package org.civicsync.server.realtime;

import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
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

  /**
   * Opens a stream for the device, told of changes after {@code head}; close it when the
   * connection ends. The listener is called on the threads that dispatch a commit (a few threads
   * serve every stream), so it must not block: it hands the change to its connection and
   * returns.
   */
  public Stream open(Caller.Device device, long head, Listener listener) {
    Stream s = new Stream(device, head, listener);
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
    java.util.function.Consumer<Stream> tell = s -> {
      if (notice.revoked().contains(s.device.deviceId())) {
        s.close(); // a revoked device is shut out at once, not at its next reconnect
      } else if (concerns(notice, s.device)) {
        s.offer(notice.head(), notice.committedAt());
      }
    };
    // The listeners write to their connections as they are told, so telling many streams is a
    // pass of socket writes: on every core, the last stream hears sooner (docs/benchmarks.md, item 31).
    if (streams.size() >= PARALLEL_FROM) {
      streams.parallelStream().forEach(tell);
    } else {
      streams.forEach(tell);
    }
  }

  /** From how many streams of a tenant a commit is told on every core rather than on one thread. */
  private static final int PARALLEL_FROM = 256;

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

  /**
   * Where a stream's changes go: its connection. Both methods are called on the hub's threads and
   * must return promptly, whatever the device's link.
   */
  public interface Listener {
    /**
     * A commit concerns the device: the tenant's head is now {@code change.head()}, newer than
     * any change given before. Changes may come faster than a device can be told of them; the
     * listener keeps the newest (it supersedes the others).
     */
    void changed(Change change);

    /** The stream ended (closed, its device revoked, or the hub closed); called once, last. */
    void ended();
  }

  /** One device's open stream: the newest head it has been given. */
  public final class Stream implements AutoCloseable {
    private final Caller.Device device;
    private final Listener listener;
    private long given;
    private boolean ended;

    private Stream(Caller.Device device, long head, Listener listener) {
      this.device = device;
      this.listener = listener;
      this.given = head;
    }

    void offer(long head, java.time.Instant committedAt) {
      // Under the stream's lock, so that the listener hears heads in order (notices of one tenant
      // may be dispatched by several threads) and never after it heard it ended.
      synchronized (this) {
        if (ended || head <= given) {
          return;
        }
        given = head;
        listener.changed(new Change(head, committedAt));
      }
    }

    /** Ends the stream: the listener hears {@link Listener#ended()} (once) and nothing more. */
    @Override
    public void close() {
      synchronized (this) {
        if (ended) {
          return;
        }
        ended = true;
      }
      Set<Stream> set = byTenant.get(device.tenantId());
      if (set != null) {
        set.remove(this);
      }
      listener.ended();
    }
  }
}
