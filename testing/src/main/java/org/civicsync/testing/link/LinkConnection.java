package org.civicsync.testing.link;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.Socket;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.civicsync.testing.link.HttpWire.Framing;
import org.civicsync.testing.link.HttpWire.Head;
import org.civicsync.testing.link.HttpWire.HeadKind;
import org.civicsync.testing.link.HttpWire.Request;
import org.civicsync.testing.link.HttpWire.Response;
import org.civicsync.testing.link.HttpWire.Source;

/**
 * One client connection through the link and its server connection: four threads, a reader and a
 * writer per direction. The up reader parses requests and decides their faults; the down reader
 * parses responses and carries out the faults that act on them, in the same order.
 */
final class LinkConnection {
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  /** Unwinds a reader whose connection is being reset by the link itself. */
  static final class Killed extends IOException {
    private static final long serialVersionUID = 1L;

    Killed() {
      super("connection reset by the link");
    }

    @Override
    public synchronized Throwable fillInStackTrace() {
      // Control flow, not an error: the stack trace would never be read.
      return this;
    }
  }

  /** What the link decided for one request; made by the up reader, read by the down reader. */
  private record Plan(
      int request,
      String method,
      boolean resetMid,
      double cutFraction,
      boolean lostAck,
      boolean duplicate,
      long delayResponseNanos,
      CompletableFuture<byte[]> requestBytes) {}

  private final FaultyLink link;
  private final long ordinal;
  private final Socket client;
  private final Socket server = new Socket();
  private final Pipe up;
  private final Pipe down;
  private final BlockingQueue<Plan> plans = new LinkedBlockingQueue<>();
  private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
  private final List<Thread> threads = new CopyOnWriteArrayList<>();
  private final AtomicBoolean ended = new AtomicBoolean();
  private final AtomicInteger halfClosed = new AtomicInteger();
  private int requests;

  LinkConnection(FaultyLink link, long ordinal, Socket client, long seed) {
    this.link = link;
    this.ordinal = ordinal;
    this.client = client;
    // One generator per direction, so that the draws of each do not depend on thread timing.
    this.up = new Pipe(this, Direction.UP, new Random(derive(seed, ordinal, 1)));
    this.down = new Pipe(this, Direction.DOWN, new Random(derive(seed, ordinal, 2)));
    sockets.add(client);
    sockets.add(server);
  }

  FaultyLink link() {
    return link;
  }

  long ordinal() {
    return ordinal;
  }

  boolean ended() {
    return ended.get();
  }

  void start() {
    spawn("up", this::run);
  }

  private void spawn(String role, Runnable body) {
    Thread t = link.spawn("faulty-link-" + link.port() + "-c" + ordinal + "-" + role, body);
    if (t != null) {
      threads.add(t);
      if (ended.get()) {
        t.interrupt();
      }
    }
  }

  private void run() {
    try {
      client.setTcpNoDelay(true);
      server.setTcpNoDelay(true);
      server.connect(link.target(), CONNECT_TIMEOUT_MILLIS);
    } catch (IOException e) {
      kill(true);
      return;
    }
    // TCP's handshake: the client's first byte can leave only once its SYN has crossed and the
    // SYN-ACK come back, one round trip after it connected (loopback answered the connect at
    // once). A client that opens a connection per request pays this each time, as on a real link.
    up.notBefore(System.nanoTime() + 2 * link.profile().latency().toNanos());
    up.connectTo(server);
    down.connectTo(client);
    spawn("up-writer", up::writeLoop);
    spawn("down-writer", down::writeLoop);
    spawn("down", this::downLoop);
    upLoop();
  }

  // ---- client to server ----

  private void upLoop() {
    pump(client, up, this::requests);
  }

  /** The stream's framing: forwards messages one by one; true if the rest is to go as plain bytes. */
  @FunctionalInterface
  private interface Messages {
    boolean forward(Source source) throws IOException, InterruptedException;
  }

  /**
   * Reads one direction of the connection and feeds its pipe: message by message while the stream
   * is HTTP, as plain bytes once it is not.
   */
  private void pump(Socket from, Pipe to, Messages framing) {
    Source source;
    try {
      source = new Source(from.getInputStream());
    } catch (IOException e) {
      kill(true);
      return;
    }
    try {
      boolean raw;
      try {
        raw = framing.forward(source);
      } catch (HttpWire.Malformed e) {
        raw = true;
      }
      if (raw) {
        source.copyToEof(to::send);
        to.endAfterQueued();
      }
    } catch (InterruptedException | Killed e) {
      // Torn down by the link.
    } catch (IOException e) {
      // This side reset its connection (or it was closed under us): the other side learns it too.
      if (!ended()) {
        to.resetAfterQueued();
      }
    }
  }

  /** Forwards requests one by one; true if the rest of the stream is to go as plain bytes. */
  private boolean requests(Source source) throws IOException, InterruptedException {
    while (true) {
      Head head = source.readHead(true);
      if (head.kind() == HeadKind.EOF) {
        up.endAfterQueued();
        return false;
      }
      if (head.kind() != HeadKind.HEAD) {
        return true;
      }
      Request request = HttpWire.parseRequest(head.bytes());
      if (request == null) {
        up.send(head.bytes(), 0, head.bytes().length);
        return true;
      }
      Plan plan = decide(request);
      if (plan.resetMid()) {
        resetMidRequest(source, head.bytes(), request, plan.cutFraction());
        return false;
      }
      up.send(head.bytes(), 0, head.bytes().length);
      if (!plan.duplicate()) {
        if (!source.copyBody(request.framing(), request.length(), up::send)) {
          return true;
        }
        continue;
      }
      // Take the whole body before forwarding it, so that the copy is known to be complete
      // before the server can answer (the head went ahead, for a client awaiting 100 Continue).
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      boolean complete =
          source.copyBody(
              request.framing(), request.length(), (b, off, len) -> body.write(b, off, len));
      byte[] bytes = body.toByteArray();
      if (complete) {
        ByteArrayOutputStream whole = new ByteArrayOutputStream(head.bytes().length + bytes.length);
        whole.write(head.bytes());
        whole.write(bytes);
        plan.requestBytes().complete(whole.toByteArray());
      }
      up.send(bytes, 0, bytes.length);
      if (!complete) {
        return true;
      }
    }
  }

  /**
   * Draws this request's faults, queues its plan for the down reader and holds the request back if
   * it is to be reordered.
   */
  private Plan decide(Request request) throws InterruptedException {
    LinkProfile p = link.profile();
    Random r = up.random();
    int n = requests++;
    // Always the same number of draws per request, so that changing one probability does not
    // reshuffle the decisions of the others.
    double uReset = r.nextDouble();
    double cutFraction = r.nextDouble();
    double uLost = r.nextDouble();
    double uDuplicate = r.nextDouble();
    double uDelay = r.nextDouble();
    double delayShare = r.nextDouble();
    double uReorder = r.nextDouble();
    double reorderShare = r.nextDouble();

    boolean reset = uReset < p.resetMidRequest();
    boolean lost = !reset && uLost < p.lostAck();
    boolean duplicate = !reset && !lost && uDuplicate < p.duplicateRequest();
    long delay =
        !reset && !lost && uDelay < p.delayResponse()
            ? halfToAll(p.delayResponseMax().toNanos(), delayShare)
            : 0;
    long hold = uReorder < p.reorder() ? halfToAll(p.reorderMax().toNanos(), reorderShare) : 0;

    Plan plan =
        new Plan(
            n, request.method(), reset, cutFraction, lost, duplicate, delay,
            new CompletableFuture<>());
    plans.add(plan);
    if (hold > 0) {
      link.recordFault(ordinal, FaultKind.REORDER, Direction.UP, n);
      Pipe.sleepUntil(System.nanoTime() + hold);
    }
    if (reset) {
      link.recordFault(ordinal, FaultKind.RESET_MID_REQUEST, Direction.UP, n);
    }
    return plan;
  }

  private static long halfToAll(long maxNanos, double share) {
    return maxNanos / 2 + (long) (maxNanos / 2.0 * share);
  }

  /**
   * Forwards the head and a strict prefix of the body (a strict prefix of the head when there is
   * no body), then resets both sides.
   */
  private void resetMidRequest(Source source, byte[] head, Request request, double cutFraction)
      throws IOException, InterruptedException {
    switch (request.framing()) {
      case FIXED -> {
        up.send(head, 0, head.length);
        source.copyFixed((long) (cutFraction * request.length()), up::send);
      }
      case CHUNKED -> {
        // The length of a chunked body is known only at its end: take it whole, then cut.
        up.send(head, 0, head.length);
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        source.copyChunked((b, off, len) -> body.write(b, off, len));
        byte[] bytes = body.toByteArray();
        up.send(bytes, 0, (int) (cutFraction * bytes.length));
      }
      default -> up.send(head, 0, 1 + (int) (cutFraction * (head.length - 1)));
    }
    up.resetAfterQueued();
  }

  // ---- server to client ----

  private void downLoop() {
    pump(server, down, this::responses);
  }

  /** Forwards responses one by one; true if the rest of the stream is to go as plain bytes. */
  private boolean responses(Source source) throws IOException, InterruptedException {
    while (true) {
      Head head = source.readHead(false);
      if (head.kind() == HeadKind.EOF) {
        down.endAfterQueued();
        return false;
      }
      if (head.kind() != HeadKind.HEAD) {
        return true;
      }
      Plan plan = plans.peek();
      Response response =
          HttpWire.parseResponse(head.bytes(), plan == null ? "GET" : plan.method());
      if (response == null) {
        down.send(head.bytes(), 0, head.bytes().length);
        return true;
      }
      if (response.interim()) {
        down.send(head.bytes(), 0, head.bytes().length);
        continue;
      }
      plans.poll();
      if (response.framing() == Framing.TUNNEL) {
        down.send(head.bytes(), 0, head.bytes().length);
        return true;
      }
      boolean complete;
      if (plan != null && plan.lostAck()) {
        // Let the server finish its answer (it has committed by now), then drop it.
        source.copyBody(response.framing(), response.length(), HttpWire.DISCARD);
        link.recordFault(ordinal, FaultKind.LOST_ACK, Direction.DOWN, plan.request());
        down.resetAfterQueued();
        return false;
      } else if (plan != null && plan.duplicate()) {
        ByteArrayOutputStream held = new ByteArrayOutputStream();
        held.write(head.bytes());
        complete =
            source.copyBody(
                response.framing(), response.length(), (b, off, len) -> held.write(b, off, len));
        byte[] request = plan.requestBytes().getNow(null);
        if (complete && request != null) {
          duplicate(plan, request);
        }
        delayIfPlanned(plan);
        byte[] bytes = held.toByteArray();
        down.send(bytes, 0, bytes.length);
      } else {
        delayIfPlanned(plan);
        down.send(head.bytes(), 0, head.bytes().length);
        complete = source.copyBody(response.framing(), response.length(), down::send);
      }
      if (!complete || response.framing() == Framing.UNTIL_CLOSE) {
        return true;
      }
    }
  }

  private void delayIfPlanned(Plan plan) throws InterruptedException {
    if (plan != null && plan.delayResponseNanos() > 0) {
      link.recordFault(ordinal, FaultKind.DELAY_RESPONSE, Direction.DOWN, plan.request());
      Pipe.sleepUntil(System.nanoTime() + plan.delayResponseNanos());
    }
  }

  /** Sends the request again on a connection of its own and waits for its answer, discarded. */
  private void duplicate(Plan plan, byte[] request) throws IOException {
    Socket copy = new Socket();
    sockets.add(copy);
    try {
      if (ended()) {
        throw new Killed();
      }
      copy.setTcpNoDelay(true);
      copy.connect(link.target(), CONNECT_TIMEOUT_MILLIS);
      OutputStream out = copy.getOutputStream();
      out.write(request);
      out.flush();
      link.recordFault(ordinal, FaultKind.DUPLICATE_REQUEST, Direction.UP, plan.request());
      Source answer = new Source(copy.getInputStream());
      while (true) {
        Head head = answer.readHead(false);
        if (head.kind() != HeadKind.HEAD) {
          return;
        }
        Response response = HttpWire.parseResponse(head.bytes(), plan.method());
        if (response == null || response.framing() == Framing.TUNNEL) {
          return;
        }
        if (!response.interim()) {
          answer.copyBody(response.framing(), response.length(), HttpWire.DISCARD);
          return;
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new Killed();
    } catch (IOException e) {
      if (ended()) {
        throw new Killed();
      }
      // The copy failed on its own; the original answer is still delivered.
    } finally {
      sockets.remove(copy);
      copy.close();
    }
  }

  // ---- the connection's end ----

  /** A direction has delivered its end of stream; when both have, the connection is over. */
  void halfClosed() {
    if (halfClosed.incrementAndGet() == 2) {
      kill(false);
    }
  }

  /** Closes every socket of the connection (with a TCP reset if asked) and stops its threads. */
  void kill(boolean reset) {
    if (!ended.compareAndSet(false, true)) {
      return;
    }
    for (Socket s : sockets) {
      try {
        if (reset && !s.isClosed()) {
          // Linger 0 makes close() send RST instead of FIN.
          s.setSoLinger(true, 0);
        }
      } catch (IOException ignored) {
        // Not connected: nothing to reset.
      }
      try {
        s.close();
      } catch (IOException ignored) {
        // Already gone.
      }
    }
    Thread self = Thread.currentThread();
    for (Thread t : threads) {
      if (t != self) {
        t.interrupt();
      }
    }
    link.ended(this);
  }

  /** SplitMix64 of the seed and the stream's identity: independent generators per stream. */
  private static long derive(long seed, long ordinal, int stream) {
    long z = seed + 0x9E3779B97F4A7C15L * (2 * ordinal + stream);
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }
}
