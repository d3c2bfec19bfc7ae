package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import java.util.function.Supplier;
import org.civicsync.server.store.CommitListeners;
import org.civicsync.server.store.CommitNotice;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Commit notices across server instances through PostgreSQL's LISTEN/NOTIFY. Every write
 * transaction that announces a notice sends one {@code NOTIFY} just before it commits (PostgreSQL
 * delivers it only if the transaction commits, and takes a global lock for it at commit, so never
 * more than one per transaction); one thread per store listens on a connection of its own and
 * hands what arrives, from this instance and every other, to the store's listeners.
 *
 * <p>A notice can be lost while the listening connection is down. When it comes back the channel
 * tells the listeners that everything may have changed for every tenant, so no stream misses a
 * change: at worst a device pulls once for nothing.
 */
final class CommitChannel implements AutoCloseable {
  private static final Logger LOG = LoggerFactory.getLogger(CommitChannel.class);
  private static final int POLL_MILLIS = 250;

  private final String channel;
  private final Supplier<Connection> connect;
  private final Supplier<List<String>> tenants;
  private final java.util.function.ToLongFunction<String> head;
  private final CommitListeners listeners = new CommitListeners();
  private volatile boolean closed;
  private Thread thread;

  /**
   * @param schema the store's schema: instances on other schemas of the same database have a
   *     channel of their own
   */
  CommitChannel(String schema, Supplier<Connection> connect, Supplier<List<String>> tenants, java.util.function.ToLongFunction<String> head) {
    this.channel = "civicsync_commits_" + schema;
    this.connect = connect;
    this.tenants = tenants;
    this.head = head;
  }

  /** Sends {@code notice} on {@code c} inside its open transaction (delivered if it commits). */
  void send(Connection c, CommitNotice notice) throws SQLException {
    try (var ps = c.prepareStatement("SELECT pg_notify(?, ?)")) {
      ps.setString(1, channel);
      ps.setString(2, notice.encode());
      ps.execute();
    }
  }

  /**
   * Adds a listener. The first one starts the listening thread, and this waits (a few seconds at
   * most) until it listens, so that every commit after this returns is heard.
   */
  AutoCloseable subscribe(java.util.function.Consumer<CommitNotice> listener) {
    AutoCloseable handle = listeners.add(listener);
    synchronized (this) {
      if (thread == null && !closed) {
        thread = Thread.ofPlatform().daemon().name("civicsync-commit-listener").start(this::listen);
      }
    }
    try {
      if (!listening.await(5, java.util.concurrent.TimeUnit.SECONDS)) {
        LOG.warn("not yet listening for commits on {}; notices may arrive only after it connects", channel);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return handle;
  }

  private final java.util.concurrent.CountDownLatch listening = new java.util.concurrent.CountDownLatch(1);

  private void listen() {
    boolean lostSome = false;
    long backoff = 100;
    while (!closed) {
      try (Connection c = connect.get()) {
        c.setAutoCommit(true);
        try (Statement st = c.createStatement()) {
          st.execute("LISTEN \"" + channel.replace("\"", "\"\"") + "\"");
        }
        listening.countDown();
        if (lostSome) {
          for (String t : tenants.get()) {
            listeners.deliver(CommitNotice.everything(t, head.applyAsLong(t)));
          }
        }
        backoff = 100;
        PGConnection pg = c.unwrap(PGConnection.class);
        while (!closed) {
          PGNotification[] arrived = pg.getNotifications(POLL_MILLIS);
          if (arrived == null) {
            continue;
          }
          for (PGNotification n : arrived) {
            try {
              listeners.deliver(CommitNotice.decode(n.getParameter()));
            } catch (IllegalArgumentException e) {
              LOG.warn("ignoring a malformed commit notice on {}", channel, e);
            }
          }
        }
      } catch (SQLException | RuntimeException e) {
        if (closed) {
          return;
        }
        lostSome = true;
        LOG.warn("listening for commits failed ({}); retrying in {} ms", e.getMessage(), backoff);
        try {
          Thread.sleep(backoff);
        } catch (InterruptedException ie) {
          Thread.currentThread().interrupt();
          return;
        }
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  }

  @Override
  public void close() {
    closed = true;
    Thread t;
    synchronized (this) {
      t = thread;
    }
    if (t != null) {
      try {
        t.join(2_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }
}
