package org.civicsync.server.app.live;

import jakarta.servlet.ServletOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.civicsync.server.realtime.StreamHub;
import org.civicsync.server.tenancy.Caller;

/**
 * Serves live streams over Server-Sent Events on asynchronous requests. Each stream opens with a
 * {@code ready} event (or {@code changes} when the device says, by its {@code Last-Event-ID}, it
 * missed something), then gets a {@code changes} event whenever a commit concerns its device and
 * a comment line as heartbeat when it has been idle for the heartbeat's time.
 *
 * <p>Nothing here blocks: a change is written by the threads that dispatch its commit, through
 * the servlet's non-blocking output; a connection that cannot take it now keeps only the newest
 * change and is written to when it can ({@code onWritePossible}). One thread sends heartbeats.
 */
public final class EventStreams implements AutoCloseable {
  private final StreamHub hub;
  private final long heartbeatNanos;
  private final Set<Sink> open = ConcurrentHashMap.newKeySet();
  private final ScheduledExecutorService ticker;
  /** The last {@code changes} event made: every stream told of one commit writes the same bytes. */
  private volatile Encoded lastChanges = new Encoded(new StreamHub.Change(-1, Instant.EPOCH), new byte[0]);

  private record Encoded(StreamHub.Change change, byte[] bytes) {}

  /**
   * @param hub the hub the streams listen to; this takes it over (closing this closes it)
   * @param heartbeat how long a stream may stay silent before it gets a heartbeat
   */
  public EventStreams(StreamHub hub, Duration heartbeat) {
    this.hub = hub;
    this.heartbeatNanos = heartbeat.toNanos();
    this.ticker = Executors.newSingleThreadScheduledExecutor(r -> Thread.ofPlatform().daemon().name("civicsync-stream-heartbeats").unstarted(r));
    // A quarter of the heartbeat: an idle stream hears one between 1 and 1.25 heartbeats apart.
    long tick = Math.max(1, heartbeatNanos / 4);
    ticker.scheduleAtFixedRate(this::beat, tick, tick, TimeUnit.NANOSECONDS);
  }

  /**
   * Serves {@code device}'s stream on {@code out}, the output of a request already in
   * asynchronous mode on which nothing was written yet. The stream is registered with the hub
   * before the tenant's head is read, so no commit falls between the two.
   *
   * @param lastSeen the head the device last heard of ({@code Last-Event-ID}), or -1
   * @param head reads the tenant's head now; if it throws, the stream is closed and nothing written
   * @return completes when the stream has ended (its device gone or revoked, the hub closed);
   *     the caller then completes the request
   */
  public CompletableFuture<Void> serve(Caller.Device device, long lastSeen, LongSupplier head, ServletOutputStream out) {
    Sink sink = new Sink(out, this::changesEvent, open::remove);
    StreamHub.Stream stream = hub.open(device, -1, sink);
    try {
      long now = head.getAsLong();
      String opening = sseText(lastSeen >= 0 && lastSeen < now ? "changes" : "ready", now, Optional.empty(), "retry: 3000\n");
      sink.start(stream, now, opening.getBytes(StandardCharsets.UTF_8));
      open.add(sink);
      if (sink.done().isDone()) {
        open.remove(sink); // ended before it was added (a revocation, or the hub closing)
      }
      out.setWriteListener(sink);
    } catch (RuntimeException e) {
      stream.close(); // nothing was written: the request answers with the error
      throw e;
    }
    sink.attached();
    return sink.done();
  }

  /** Streams being served now. */
  public int open() {
    return open.size();
  }

  private void beat() {
    long now = System.nanoTime();
    for (Sink s : open) {
      s.heartbeatIfIdle(now, heartbeatNanos);
    }
  }

  private byte[] changesEvent(StreamHub.Change change) {
    Encoded last = lastChanges;
    if (last.change().equals(change)) {
      return last.bytes();
    }
    byte[] bytes = sseText("changes", change.head(), Optional.of(change.committedAt()), "").getBytes(StandardCharsets.UTF_8);
    lastChanges = new Encoded(change, bytes);
    return bytes;
  }

  private static String sseText(String event, long head, Optional<Instant> committedAt, String prefix) {
    return prefix + "event: " + event + "\nid: " + head + "\ndata: {\"head\":" + head
        + committedAt.map(t -> ",\"committedAt\":\"" + t.truncatedTo(ChronoUnit.MICROS) + "\"").orElse("") + "}\n\n";
  }

  /** Ends every stream (their requests complete) and stops the heartbeats. */
  @Override
  public void close() {
    hub.close();
    ticker.shutdownNow();
  }
}
