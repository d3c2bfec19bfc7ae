package org.civicsync.client;

import java.io.IOException;
import java.time.Duration;
import java.util.Optional;
import java.util.function.BooleanSupplier;
import org.civicsync.client.sync.Backoff;
import org.civicsync.client.transport.ApiError;
import org.civicsync.client.transport.Transport;

/**
 * Keeps the device's live stream open while the client runs and is online, and starts a sync
 * cycle whenever the server says there is something for the device. The stream is only a hint:
 * background sync keeps its timer, so when the stream is down (or the transport cannot hold one,
 * or the server is older than the stream) the client simply polls.
 */
final class LiveUpdates {
  /** Opens the stream with the current token and blocks while it is open. */
  interface Opener {
    void open(Optional<String> lastEventId, Transport.EventSink sink) throws IOException, ApiError;
  }

  private final Opener opener;
  private final Runnable onChange;
  private final BooleanSupplier mayRun;
  private final Backoff backoff;
  private final Object signal = new Object();
  private volatile boolean closed;
  private volatile boolean live;
  private volatile Optional<String> lastEventId = Optional.empty();
  private Thread thread;

  /**
   * @param onChange called on the stream's thread when the server has something new; must return quickly
   * @param mayRun whether a stream should be open now (started, online, enrolled)
   */
  LiveUpdates(Opener opener, Runnable onChange, BooleanSupplier mayRun, Backoff backoff) {
    this.opener = opener;
    this.onChange = onChange;
    this.mayRun = mayRun;
    this.backoff = backoff;
  }

  synchronized void start() {
    if (thread == null && !closed) {
      thread = new Thread(this::loop, "civicsync-live");
      thread.setDaemon(true);
      thread.start();
    }
  }

  /** Whether the stream is open and has heard from the server. */
  boolean live() {
    return live;
  }

  /** Something changed (online again, enrolled): look again without waiting out a pause. */
  void wake() {
    synchronized (signal) {
      signal.notifyAll();
    }
  }

  /** Ends the loop; an open stream ends at its next event or heartbeat. */
  void close() {
    closed = true;
    wake();
  }

  private void loop() {
    boolean reconnecting = false;
    while (!closed) {
      if (!mayRun.getAsBoolean()) {
        pause(Duration.ofSeconds(5));
        continue;
      }
      boolean[] again = {reconnecting};
      try {
        opener.open(lastEventId, new Transport.EventSink() {
          @Override
          public boolean event(String name, String id, String data) {
            live = true;
            backoff.reset();
            if (!id.isEmpty()) {
              lastEventId = Optional.of(id);
            }
            // After a reconnect even "ready" may follow changes the device missed.
            if (name.equals("changes") || again[0]) {
              again[0] = false;
              onChange.run();
            }
            return !closed && mayRun.getAsBoolean();
          }

          @Override
          public boolean heartbeat() {
            return !closed && mayRun.getAsBoolean();
          }
        });
      } catch (UnsupportedOperationException e) {
        live = false;
        return; // this transport polls only
      } catch (ApiError e) {
        if (e.status() == 404 || e.status() == 405 || e.code().equals("DEVICE_REVOKED") || e.code().equals("FORBIDDEN")) {
          live = false;
          return; // an older server, or a device that may not stream: poll
        }
      } catch (IOException | RuntimeException e) {
        // Broken or timed out: reconnect after a pause.
      }
      live = false;
      reconnecting = true;
      if (!closed) {
        pause(backoff.next());
      }
    }
  }

  private void pause(Duration d) {
    synchronized (signal) {
      if (closed) {
        return;
      }
      try {
        signal.wait(Math.max(1, d.toMillis()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        closed = true;
      }
    }
  }
}
