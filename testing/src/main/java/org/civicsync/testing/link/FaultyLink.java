package org.civicsync.testing.link;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * An in-process TCP proxy on loopback that puts an emulated network between a client and a server:
 * bandwidth and latency per direction (a new connection's first byte also waits one round trip,
 * for TCP's handshake), packet loss emulated as connection resets, and HTTP-aware
 * faults (lost acknowledgements, duplicated requests, resets in the middle of a request, delayed
 * responses, reordered connections), all as described by a {@link LinkProfile}.
 *
 * <p>Point the client at {@link #uri()} (or {@link #port()} on 127.0.0.1) instead of the server:
 *
 * <pre>{@code
 * LinkProfile profile = LinkProfile.TWO_G_RURAL.timeScale(10);
 * try (FaultyLink link = FaultyLink.start(serverAddress, profile, seed)) {
 *   HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
 *   client.send(HttpRequest.newBuilder(link.uri().resolve("/v1/sync/pull")).build(), ofString());
 *   …
 *   System.out.println(link.stats() + " " + link);  // the seed, to replay a failing run
 * }
 * }</pre>
 *
 * <p>Each accepted connection is forwarded to the target on a new connection of its own. When the
 * client speaks HTTP/1.x, requests and responses are delimited ({@code Content-Length}, {@code
 * Transfer-Encoding: chunked}, until close, interim {@code 100 Continue} responses, keep-alive,
 * pipelining) and the HTTP faults apply per request; anything else is forwarded as plain bytes
 * with only bandwidth, latency and loss. Bytes are never rewritten.
 *
 * <p><b>Determinism.</b> Every random decision is drawn from generators derived from the seed and
 * the connection's ordinal (the order in which the link accepted it), one per direction, and the
 * loss draws are tied to byte offsets rather than to how reads happen to split the stream. So the
 * same seed, with the same connections opened in the same order carrying the same bytes, injects
 * the same faults at the same places; {@link #faults()} lists them in an order that does not depend
 * on timing. Timing itself (when bytes arrive) is, of course, not reproducible.
 *
 * <p><b>Clients beware.</b> {@link java.net.HttpURLConnection} silently retries a POST once when
 * the connection fails before a response (unless it streams its body or {@code
 * sun.net.http.retryPost=false}); {@link java.net.http.HttpClient} retries idempotent requests
 * once. A retried request counts as another request here.
 *
 * <p>Thread-safe. {@link #close()} stops the link: every connection through it is reset.
 */
public final class FaultyLink implements AutoCloseable {
  private static final Duration JOIN_TIMEOUT = Duration.ofSeconds(5);

  private final InetSocketAddress target;
  private final long seed;
  private final ServerSocket listener;
  private final int port;
  private volatile LinkProfile profile;
  private volatile boolean closed;

  private final Set<Thread> threads = ConcurrentHashMap.newKeySet();
  private final Set<LinkConnection> connections = ConcurrentHashMap.newKeySet();
  private final ConcurrentLinkedQueue<InjectedFault> faults = new ConcurrentLinkedQueue<>();
  private final Map<FaultKind, LongAdder> faultCounts = new EnumMap<>(FaultKind.class);
  private final LongAdder accepted = new LongAdder();
  private final AtomicInteger active = new AtomicInteger();
  private final LongAdder bytesUp = new LongAdder();
  private final LongAdder bytesDown = new LongAdder();
  private final LongAdder packetsUp = new LongAdder();
  private final LongAdder packetsDown = new LongAdder();
  private final Thread acceptor;

  private FaultyLink(InetSocketAddress target, LinkProfile profile, long seed) throws IOException {
    this.target = target;
    this.profile = profile;
    this.seed = seed;
    for (FaultKind kind : FaultKind.values()) {
      faultCounts.put(kind, new LongAdder());
    }
    this.listener = new ServerSocket(0, 128, InetAddress.getByAddress(new byte[] {127, 0, 0, 1}));
    this.port = listener.getLocalPort();
    this.acceptor =
        Thread.ofVirtual().name("faulty-link-" + port + "-acceptor").unstarted(this::acceptLoop);
  }

  /**
   * Starts a link to {@code target}, listening on 127.0.0.1 on an ephemeral port.
   *
   * @param target the server; must be a resolved loopback address
   * @param profile how the link behaves (see {@link #setProfile})
   * @param seed the seed of every random decision: the same seed replays the same faults
   * @throws IllegalArgumentException if {@code target} is unresolved or not a loopback address (the
   *     link exists to test against local servers, never to reach other machines)
   * @throws IOException if the listening socket cannot be opened
   */
  public static FaultyLink start(InetSocketAddress target, LinkProfile profile, long seed)
      throws IOException {
    Objects.requireNonNull(target, "target");
    Objects.requireNonNull(profile, "profile");
    if (target.isUnresolved() || !target.getAddress().isLoopbackAddress()) {
      throw new IllegalArgumentException(
          "FaultyLink only forwards to loopback addresses: " + target);
    }
    FaultyLink link = new FaultyLink(target, profile, seed);
    link.threads.add(link.acceptor);
    link.acceptor.start();
    return link;
  }

  /** The port the link listens on, on 127.0.0.1. */
  public int port() {
    return port;
  }

  /** The address clients connect to instead of the target's. */
  public InetSocketAddress address() {
    return new InetSocketAddress(listener.getInetAddress(), port);
  }

  /** {@code http://127.0.0.1:port}: the base URI of the target's HTTP API through the link. */
  public URI uri() {
    return URI.create("http://" + listener.getInetAddress().getHostAddress() + ":" + port);
  }

  /** The server the link forwards to. */
  public InetSocketAddress target() {
    return target;
  }

  /** The seed of every random decision of this link. */
  public long seed() {
    return seed;
  }

  /** The current profile. */
  public LinkProfile profile() {
    return profile;
  }

  /**
   * Changes how the link behaves, at once: bandwidth, latency and loss apply from the next packet
   * on every connection, including open ones; the HTTP faults apply from the next request
   * (including requests on open keep-alive connections). Bytes already on the wire keep the
   * delivery times they were given.
   */
  public void setProfile(LinkProfile profile) {
    this.profile = Objects.requireNonNull(profile, "profile");
  }

  /** The counters so far. */
  public LinkStats stats() {
    Map<FaultKind, Long> counts = new EnumMap<>(FaultKind.class);
    faultCounts.forEach((kind, n) -> counts.put(kind, n.sum()));
    return new LinkStats(
        accepted.sum(), active.get(), bytesUp.sum(), bytesDown.sum(), packetsUp.sum(),
        packetsDown.sum(), counts);
  }

  /**
   * Every fault injected so far, sorted by connection, direction, position and kind (an order that
   * does not depend on thread timing, so two runs with the same seed and workload can be compared).
   */
  public List<InjectedFault> faults() {
    List<InjectedFault> all = new ArrayList<>(faults);
    all.sort(null);
    return List.copyOf(all);
  }

  /**
   * Stops accepting, resets every connection through the link, releases the port and waits (a few
   * seconds at most) for the link's threads to end. Idempotent.
   */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      listener.close();
    } catch (IOException ignored) {
      // Closing anyway.
    }
    join(acceptor);
    for (LinkConnection c : connections) {
      c.kill(true);
    }
    for (Thread t : threads) {
      join(t);
    }
  }

  @Override
  public String toString() {
    return "FaultyLink[127.0.0.1:" + port + " -> " + target.getAddress().getHostAddress() + ":"
        + target.getPort() + ", seed=" + seed + ", " + profile + (closed ? ", closed" : "") + "]";
  }

  /** The link's threads still running; 0 after {@link #close()} has returned. */
  int liveThreads() {
    return (int) threads.stream().filter(Thread::isAlive).count();
  }

  private void acceptLoop() {
    long ordinal = 0;
    while (!closed) {
      Socket client;
      try {
        client = listener.accept();
      } catch (IOException e) {
        if (closed) {
          return;
        }
        continue;
      }
      LinkConnection c = new LinkConnection(this, ordinal++, client, seed);
      accepted.increment();
      active.incrementAndGet();
      connections.add(c);
      if (closed) {
        c.kill(true);
        return;
      }
      c.start();
    }
  }

  private static void join(Thread t) {
    try {
      t.join(JOIN_TIMEOUT);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ---- for the connections ----

  /** Starts a tracked thread, or returns null if the link is closed. */
  Thread spawn(String name, Runnable body) {
    Thread t =
        Thread.ofVirtual()
            .name(name)
            .unstarted(
                () -> {
                  try {
                    body.run();
                  } finally {
                    threads.remove(Thread.currentThread());
                  }
                });
    threads.add(t);
    if (closed) {
      threads.remove(t);
      return null;
    }
    t.start();
    return t;
  }

  void ended(LinkConnection c) {
    if (connections.remove(c)) {
      active.decrementAndGet();
    }
  }

  void recordFault(long connection, FaultKind kind, Direction direction, long index) {
    faults.add(new InjectedFault(connection, kind, direction, index));
    faultCounts.get(kind).increment();
  }

  void countPacket(Direction direction) {
    (direction == Direction.UP ? packetsUp : packetsDown).increment();
  }

  void countBytes(Direction direction, long n) {
    (direction == Direction.UP ? bytesUp : bytesDown).add(n);
  }
}
