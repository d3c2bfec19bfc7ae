package org.civicsync.testing.link;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;

/**
 * One direction of a connection: the emulated wire. The reading side ({@link #send}) paces bytes
 * to the bandwidth, draws packet loss and stamps each piece with its delivery time; the writing
 * side ({@link #writeLoop}) delivers pieces at those times, in order.
 *
 * <p>Everything but {@link #writeLoop} is called only by the one thread that reads this
 * direction's source, so the schedule needs no locking.
 */
final class Pipe {
  /** Bytes in flight at most; bounds memory when the latency is long and the bandwidth is not. */
  private static final int WINDOW = 4 << 20;

  private enum Kind { DATA, END, RESET }

  private record Item(Kind kind, byte[] data, long deliverAt) {}

  private final LinkConnection conn;
  private final Direction direction;
  private final Random random;
  private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
  private final Semaphore window = new Semaphore(WINDOW);
  private volatile Socket destination;

  private long nextFree;
  private long lastDelivery;
  private long packetLeft;
  private long packets;
  private boolean finished;

  Pipe(LinkConnection conn, Direction direction, Random random) {
    this.conn = conn;
    this.direction = direction;
    this.random = random;
  }

  void connectTo(Socket destination) {
    this.destination = destination;
  }

  /** Nothing goes on the wire before {@code nanos} (a {@link System#nanoTime} reading). */
  void notBefore(long nanos) {
    nextFree = Math.max(nextFree, nanos);
  }

  /** The generator of this direction; HTTP decisions on requests come from the UP one. */
  Random random() {
    return random;
  }

  /**
   * Puts bytes on the wire. Blocks as long as they take to cross at the current bandwidth.
   *
   * @throws LinkConnection.Killed if a packet was lost: the connection is then being reset
   */
  void send(byte[] b, int off, int len) throws IOException, InterruptedException {
    while (len > 0) {
      if (finished) {
        throw new LinkConnection.Killed();
      }
      LinkProfile profile = conn.link().profile();
      if (packetLeft == 0) {
        long packet = packets++;
        conn.link().countPacket(direction);
        // Drawn even when loss is 0, so that the draws of a seed do not depend on the profile.
        if (random.nextDouble() < profile.loss()) {
          conn.link().recordFault(conn.ordinal(), FaultKind.LOSS, direction, packet);
          resetAfterQueued();
          throw new LinkConnection.Killed();
        }
        packetLeft = profile.packetBytes();
      }
      int n = (int) Math.min(len, packetLeft);
      long rate =
          direction == Direction.UP ? profile.upBitsPerSecond() : profile.downBitsPerSecond();
      long now = System.nanoTime();
      long start = Math.max(now, nextFree);
      long finish = rate == 0 ? start : start + (long) (n * 8 * 1e9 / rate);
      nextFree = finish;
      long deliverAt = Math.max(finish + profile.latency().toNanos(), lastDelivery);
      lastDelivery = deliverAt;
      window.acquire(n);
      queue.add(new Item(Kind.DATA, Arrays.copyOfRange(b, off, off + n), deliverAt));
      packetLeft -= n;
      off += n;
      len -= n;
      // The link carries one packet at a time: hold the sender back while this one crosses.
      sleepUntil(finish);
    }
  }

  /** The sender has finished: half-close the destination once everything queued is delivered. */
  void endAfterQueued() {
    enqueueLast(Kind.END);
  }

  /** Resets the whole connection once everything queued is delivered. */
  void resetAfterQueued() {
    enqueueLast(Kind.RESET);
  }

  private void enqueueLast(Kind kind) {
    if (finished) {
      return;
    }
    finished = true;
    long latency = conn.link().profile().latency().toNanos();
    long at = Math.max(Math.max(System.nanoTime(), nextFree) + latency, lastDelivery);
    lastDelivery = at;
    queue.add(new Item(kind, null, at));
  }

  /** Delivers queued items at their times until the end of the stream or of the connection. */
  void writeLoop() {
    try {
      Socket out = destination;
      // Buffered so that pieces due together leave in one write; flushed whenever the wire idles.
      OutputStream stream = new BufferedOutputStream(out.getOutputStream(), 64 * 1024);
      while (true) {
        Item item = queue.take();
        sleepUntil(item.deliverAt());
        switch (item.kind()) {
          case DATA -> {
            stream.write(item.data());
            conn.link().countBytes(direction, item.data().length);
            window.release(item.data().length);
            Item next = queue.peek();
            if (next == null || next.kind() != Kind.DATA || next.deliverAt() > System.nanoTime()) {
              stream.flush();
            }
          }
          case END -> {
            stream.flush();
            out.shutdownOutput();
            conn.halfClosed();
            return;
          }
          case RESET -> {
            stream.flush();
            conn.kill(true);
            return;
          }
        }
      }
    } catch (InterruptedException e) {
      // The connection is being torn down.
    } catch (IOException e) {
      // The receiving side went away: pass it on as a reset, as a network would.
      conn.kill(true);
    }
  }

  static void sleepUntil(long deadlineNanos) throws InterruptedException {
    long left;
    while ((left = deadlineNanos - System.nanoTime()) > 0) {
      Thread.sleep(Duration.ofNanos(left));
    }
  }
}
