package org.civicsync.server.app.live;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Function;
import org.civicsync.server.realtime.StreamHub;

/**
 * One stream's connection: what it still has to write — its opening event, the newest change not
 * yet written (newer ones replace it), a heartbeat — and the non-blocking writing of it.
 *
 * <p>Writes happen on whichever thread has something to write (the hub's dispatchers, the
 * heartbeat thread, or the container's {@code onWritePossible}), one at a time under the sink's
 * lock. A write is attempted only when the output says it is ready; when it is not, the container
 * calls {@link #onWritePossible()} once it is, and the sink writes what is then pending.
 */
final class Sink implements StreamHub.Listener, WriteListener {
  private static final byte[] HEARTBEAT = ": heartbeat\n\n".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

  private final ServletOutputStream out;
  private final Function<StreamHub.Change, byte[]> encode;
  private final Consumer<Sink> gone;
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final ReentrantLock lock = new ReentrantLock();

  // Guarded by lock.
  private StreamHub.Stream stream;
  private byte[] opening;
  private long floor = Long.MIN_VALUE; // the newest head written or opened with: older changes are not news
  private StreamHub.Change pending;
  private boolean heartbeatDue;
  private boolean unflushed;
  private boolean attached;
  private boolean ended;
  private long lastWrite = System.nanoTime();

  Sink(ServletOutputStream out, Function<StreamHub.Change, byte[]> encode, Consumer<Sink> gone) {
    this.out = out;
    this.encode = encode;
    this.gone = gone;
  }

  CompletableFuture<Void> done() {
    return done;
  }

  /** The stream is registered and the head read: the opening event is due, older changes are not. */
  void start(StreamHub.Stream stream, long head, byte[] opening) {
    lock.lock();
    try {
      this.stream = stream;
      this.opening = opening;
      this.floor = head;
      if (pending != null && pending.head() <= head) {
        pending = null;
      }
    } finally {
      lock.unlock();
    }
  }

  /** The write listener is set: writing may begin (the container also calls onWritePossible). */
  void attached() {
    lock.lock();
    try {
      attached = true;
    } finally {
      lock.unlock();
    }
    pump();
  }

  @Override
  public void changed(StreamHub.Change change) {
    lock.lock();
    try {
      if (ended || change.head() <= floor) {
        return;
      }
      pending = change; // the hub gives heads in order: the newest supersedes the rest
    } finally {
      lock.unlock();
    }
    pump();
  }

  void heartbeatIfIdle(long now, long idleNanos) {
    lock.lock();
    try {
      if (ended || now - lastWrite < idleNanos) {
        return;
      }
      heartbeatDue = true;
    } finally {
      lock.unlock();
    }
    pump();
  }

  @Override
  public void onWritePossible() {
    pump();
  }

  @Override
  public void onError(Throwable t) {
    fail();
  }

  @Override
  public void ended() {
    lock.lock();
    try {
      ended = true;
    } finally {
      lock.unlock();
    }
    gone.accept(this);
    done.complete(null);
  }

  /** Writes what is pending for as long as the output takes it without blocking. */
  private void pump() {
    boolean failed = false;
    lock.lock();
    try {
      while (attached && !ended) {
        byte[] next = peek();
        if (next == null) {
          if (!unflushed || !out.isReady()) {
            return;
          }
          unflushed = false;
          out.flush();
          continue;
        }
        if (!out.isReady()) {
          return; // onWritePossible follows once it is
        }
        take();
        out.write(next);
        unflushed = true;
        lastWrite = System.nanoTime();
      }
    } catch (IOException | IllegalStateException e) {
      // The device went away (or the response is already over): the stream ends.
      failed = true;
    } finally {
      lock.unlock();
    }
    if (failed) {
      fail();
    }
  }

  private byte[] peek() {
    if (opening != null) {
      return opening;
    }
    if (pending != null) {
      return encode.apply(pending);
    }
    return heartbeatDue ? HEARTBEAT : null;
  }

  private void take() {
    if (opening != null) {
      opening = null;
      heartbeatDue = false;
    } else if (pending != null) {
      floor = pending.head();
      pending = null;
      heartbeatDue = false;
    } else {
      heartbeatDue = false;
    }
  }

  /** Writing failed: the stream ends (set before anything is written, so it is there). */
  private void fail() {
    StreamHub.Stream s;
    lock.lock();
    try {
      s = stream;
    } finally {
      lock.unlock();
    }
    s.close(); // the hub calls ended()
  }
}
