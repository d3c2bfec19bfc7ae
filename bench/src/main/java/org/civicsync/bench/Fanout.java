package org.civicsync.bench;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.civicsync.testing.Fixtures;

/**
 * Figure 5: {@code subscribers} live streams ({@code GET /v1/sync/stream}) held open while one
 * device commits changes; for each commit, the time from the commit (the {@code committedAt} its
 * {@code changes} event carries, stamped by the server as it commits) until each subscriber has
 * read the event. The same subscribers, with the same client code, then listen to a bare
 * broadcaster in this process (a socket server that writes one event to every open stream, its
 * {@code committedAt} the moment it starts writing): what any broadcast to that many streams costs
 * on this machine. Both clocks are this machine's wall clock (microseconds). The time from just
 * before the push is sent is reported beside it ({@code pushToNotice}).
 *
 * <p>The listeners are plain sockets read by one thread with one selector, parsing HTTP/1.1
 * chunks and event lines themselves, so that the harness adds as little as it can to either side:
 * the first version read each stream through the JDK's HttpClient on a virtual thread of its own.
 */
final class Fanout {
  record Result(int subscribers, int commits, double p50Ms, double p99Ms, double maxMs, double bareP50Ms, double bareP99Ms, double bareMaxMs,
      double pushToNoticeP50Ms, double pushToNoticeP99Ms, long missed) {
    double ratio() {
      return p99Ms / bareP99Ms;
    }
  }

  private static final Pattern COMMITTED_AT = Pattern.compile("\"committedAt\":\"([^\"]+)\"");

  private static final int WARM_UP = 10;

  private Fanout() {}

  static Result run(Api api, String tenant, int subscribers, int commits) throws Exception {
    List<Api.Device> listeners = api.devices(tenant, subscribers);
    Api.Device writer = api.devices(tenant, 1).get(0);
    Latencies ours = new Latencies(subscribers, commits);
    List<String> tokens = new ArrayList<>();
    for (Api.Device d : listeners) {
      tokens.add("Bearer " + d.token());
    }
    try (Listeners streams = Listeners.open(api.base().resolve("/v1/sync/stream"), tokens, ours::arrived)) {
      Thread.sleep(500);
      Fixtures fx = new Fixtures(77);
      // The first commits warm the push and stream paths up (a fresh server runs them interpreted); not counted.
      for (int c = -WARM_UP; c < commits; c++) {
        byte[] body = Api.gzip(Workload.json(new org.civicsync.contracts.PushRequest(List.of(
            org.civicsync.core.signing.Envelopes.sign(fx.create(fx.uuid()), tenant, writer.id(), writer.keys().privateKey())))));
        ours.start(c, System.nanoTime());
        api.push(writer, body);
        ours.await(c);
        Thread.sleep(100);
      }
    }

    // The bare broadcaster, measured with the same listeners.
    Latencies bare = new Latencies(subscribers, commits);
    try (Bare b = new Bare(); Listeners streams = Listeners.open(b.uri(), java.util.Collections.nCopies(subscribers, "Bearer bare"), bare::arrived)) {
      if (!b.awaitClients(subscribers)) {
        throw new IllegalStateException("the bare broadcaster's streams did not open");
      }
      Thread.sleep(500);
      for (int c = -WARM_UP; c < commits; c++) {
        bare.start(c, System.nanoTime());
        b.broadcast("event: changes\nid: " + (c + 1) + "\ndata: {\"head\":" + (c + 1) + ",\"committedAt\":\"" + Instant.now() + "\"}\n\n");
        bare.await(c);
        Thread.sleep(100);
      }
    }
    double[] o = ours.sortedFromCommit();
    double[] z = bare.sortedFromCommit();
    double[] e = ours.sortedFromStart();
    return new Result(subscribers, commits, pct(o, 0.50), pct(o, 0.99), o[o.length - 1], pct(z, 0.50), pct(z, 0.99), z[z.length - 1],
        pct(e, 0.50), pct(e, 0.99), ours.missed() + bare.missed());
  }

  /** What a listener is handed for each {@code data:} line: which stream, when it was read, and the line. */
  private interface Notice {
    void accept(int stream, Instant at, String data);
  }

  /**
   * Many event streams read by one thread with one selector: each connection parses its response
   * head, then HTTP/1.1 chunks (or a plain body), then lines; a {@code data:} line is timed the
   * moment its end is read.
   */
  private static final class Listeners implements AutoCloseable {
    private final Selector selector;
    private final List<SocketChannel> channels;

    private Listeners(Selector selector, List<SocketChannel> channels) {
      this.selector = selector;
      this.channels = channels;
    }

    static Listeners open(URI uri, List<String> auths, Notice notice) throws IOException, InterruptedException {
      CountDownLatch ready = new CountDownLatch(auths.size());
      Listeners l = new Listeners(Selector.open(), new ArrayList<>());
      try {
        for (int i = 0; i < auths.size(); i++) {
          SocketChannel ch = SocketChannel.open(new InetSocketAddress(uri.getHost(), uri.getPort()));
          l.channels.add(ch);
          ch.setOption(java.net.StandardSocketOptions.TCP_NODELAY, true);
          ByteBuffer request = ByteBuffer.wrap(("GET " + uri.getRawPath() + " HTTP/1.1\r\nHost: " + uri.getHost() + ":" + uri.getPort()
              + "\r\nAuthorization: " + auths.get(i) + "\r\nAccept: text/event-stream\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
          while (request.hasRemaining()) {
            ch.write(request);
          }
          ch.configureBlocking(false);
          ch.register(l.selector, SelectionKey.OP_READ, new Conn(i, notice, ready));
        }
        Thread.ofPlatform().daemon().name("fanout-listeners").start(l::loop);
        if (!ready.await(60, TimeUnit.SECONDS)) {
          throw new IllegalStateException("only " + (auths.size() - ready.getCount()) + " streams opened");
        }
        return l;
      } catch (IOException | RuntimeException | InterruptedException e) {
        l.close();
        throw e;
      }
    }

    private void loop() {
      ByteBuffer buf = ByteBuffer.allocate(16384);
      try {
        while (selector.isOpen()) {
          selector.select();
          for (SelectionKey k : selector.selectedKeys()) {
            Conn c = (Conn) k.attachment();
            buf.clear();
            int n = ((SocketChannel) k.channel()).read(buf);
            if (n < 0) {
              k.cancel();
              continue;
            }
            c.feed(buf.array(), n);
          }
          selector.selectedKeys().clear();
        }
      } catch (IOException | java.nio.channels.ClosedSelectorException | java.nio.channels.CancelledKeyException closed) {
        // the run is over
      }
    }

    @Override
    public void close() throws IOException {
      for (SocketChannel ch : channels) {
        ch.close();
      }
      selector.close();
    }
  }

  /** One stream's parser: response head, then chunk sizes and chunk data, then lines. */
  private static final class Conn {
    private final int index;
    private final Notice notice;
    private final CountDownLatch ready;
    private final java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream();
    private boolean inHead = true;
    private boolean chunked;
    private long chunkLeft = -1; // -1: reading a chunk-size line; -2: reading the CRLF after a chunk

    Conn(int index, Notice notice, CountDownLatch ready) {
      this.index = index;
      this.notice = notice;
      this.ready = ready;
    }

    void feed(byte[] b, int n) {
      for (int i = 0; i < n; i++) {
        if (inHead) {
          if (b[i] == '\n') {
            String h = text();
            if (h.isEmpty()) {
              inHead = false;
              ready.countDown();
            } else if (h.toLowerCase(java.util.Locale.ROOT).startsWith("transfer-encoding:") && h.toLowerCase(java.util.Locale.ROOT).contains("chunked")) {
              chunked = true;
            }
          } else {
            line.write(b[i]);
          }
        } else if (!chunked) {
          body(b[i]);
        } else if (chunkLeft == -1 || chunkLeft == -2) {
          if (b[i] == '\n') {
            String size = text();
            if (chunkLeft == -2) {
              chunkLeft = -1;
            } else {
              chunkLeft = Long.parseLong(size.split(";", 2)[0].trim(), 16);
              if (chunkLeft == 0) {
                chunkLeft = -1;
              }
            }
          } else {
            line.write(b[i]);
          }
        } else {
          body(b[i]);
          if (--chunkLeft == 0) {
            chunkLeft = -2;
          }
        }
      }
    }

    private byte[] bodyLine = new byte[256];
    private int bodyLength;

    private void body(byte b) {
      if (b == '\n') {
        if (bodyLength >= 5 && bodyLine[0] == 'd' && bodyLine[1] == 'a' && bodyLine[2] == 't' && bodyLine[3] == 'a' && bodyLine[4] == ':') {
          notice.accept(index, Instant.now(), new String(bodyLine, 0, bodyLength, StandardCharsets.UTF_8));
        }
        bodyLength = 0;
      } else {
        if (bodyLength == bodyLine.length) {
          bodyLine = Arrays.copyOf(bodyLine, 2 * bodyLength);
        }
        bodyLine[bodyLength++] = b;
      }
    }

    private String text() {
      String s = line.toString(StandardCharsets.US_ASCII);
      line.reset();
      return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }
  }

  private static double pct(double[] sorted, double p) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
  }

  /**
   * Arrival times per commit per subscriber, from the commit the event names and from the moment
   * its push was sent (or its broadcast began); a subscriber's first notice after a commit's start
   * counts for it.
   */
  private static final class Latencies {
    private final int subscribers;
    private final long[] starts;
    private final String[][] events;
    private final Instant[][] receivedAt;
    private final double[][] fromStart;
    private final AtomicInteger[] heard;
    private volatile int current = -1;
    private long missed;

    Latencies(int subscribers, int commits) {
      this.subscribers = subscribers;
      this.starts = new long[commits];
      this.events = new String[commits][subscribers];
      this.receivedAt = new Instant[commits][subscribers];
      this.fromStart = new double[commits][subscribers];
      this.heard = new AtomicInteger[commits];
      for (int c = 0; c < commits; c++) {
        Arrays.fill(fromStart[c], Double.NaN);
        heard[c] = new AtomicInteger();
      }
    }

    /** Commit {@code commit} starts now; a negative one is a warm-up, heard but not counted. */
    void start(int commit, long at) {
      if (commit >= 0) {
        starts[commit] = at;
      }
      current = commit;
      warmUpHeard.set(0);
    }

    private final AtomicInteger warmUpHeard = new AtomicInteger();

    /** Called on the listeners' thread: kept as read, the commit time parsed after the run. */
    void arrived(int subscriber, Instant at, String data) {
      long now = System.nanoTime();
      int c = current;
      if (!data.contains("\"committedAt\"")) {
        return; // an event that names no commit (the stream's first)
      }
      if (c < 0) {
        warmUpHeard.incrementAndGet();
        return;
      }
      if (events[c][subscriber] == null) {
        events[c][subscriber] = data;
        receivedAt[c][subscriber] = at;
        fromStart[c][subscriber] = (now - starts[c]) / 1e6;
        heard[c].incrementAndGet();
      }
    }

    private double[][] fromCommit() {
      double[][] ms = new double[events.length][subscribers];
      for (int c = 0; c < events.length; c++) {
        for (int i = 0; i < subscribers; i++) {
          Matcher m = events[c][i] == null ? null : COMMITTED_AT.matcher(events[c][i]);
          ms[c][i] = m != null && m.find() ? Duration.between(Instant.parse(m.group(1)), receivedAt[c][i]).toNanos() / 1e6 : Double.NaN;
        }
      }
      return ms;
    }

    void await(int commit) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      if (commit < 0) {
        while (warmUpHeard.get() < subscribers && System.nanoTime() < deadline) {
          Thread.sleep(1);
        }
        return;
      }
      while (heard[commit].get() < subscribers && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
      missed += subscribers - heard[commit].get();
    }

    long missed() {
      return missed;
    }

    double[] sortedFromCommit() {
      return sorted(fromCommit());
    }

    double[] sortedFromStart() {
      return sorted(fromStart);
    }

    private static double[] sorted(double[][] rows) {
      List<Double> all = new ArrayList<>();
      for (double[] row : rows) {
        for (double v : row) {
          if (!Double.isNaN(v)) {
            all.add(v);
          }
        }
      }
      double[] out = all.stream().mapToDouble(Double::doubleValue).sorted().toArray();
      return out.length == 0 ? new double[] {Double.NaN} : out;
    }
  }

  /** A server that answers every request with an endless event stream and writes a broadcast to all of them. */
  private static final class Bare implements AutoCloseable {
    private final ServerSocket server;
    private final List<OutputStream> clients = new CopyOnWriteArrayList<>();

    Bare() throws IOException {
      server = new ServerSocket(0, 2048, InetAddress.getLoopbackAddress());
      Thread.ofPlatform().daemon().start(() -> {
        while (!server.isClosed()) {
          try {
            Socket s = server.accept();
            s.setTcpNoDelay(true);
            Thread.ofVirtual().start(() -> accept(s));
          } catch (IOException closed) {
            return;
          }
        }
      });
    }

    URI uri() {
      return URI.create("http://127.0.0.1:" + server.getLocalPort() + "/stream");
    }

    private void accept(Socket s) {
      try {
        InputStream in = s.getInputStream();
        // Read the request head.
        int state = 0;
        while (state < 4) {
          int b = in.read();
          if (b < 0) {
            return;
          }
          state = (b == '\r' && (state == 0 || state == 2)) || (b == '\n' && (state == 1 || state == 3)) ? state + 1 : 0;
        }
        OutputStream out = s.getOutputStream();
        out.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII));
        out.flush();
        clients.add(out);
      } catch (IOException e) {
        // gone
      }
    }

    boolean awaitClients(int n) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
      while (clients.size() < n && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      return clients.size() >= n;
    }

    void broadcast(String event) {
      byte[] data = event.getBytes(StandardCharsets.UTF_8);
      byte[] chunk = (Integer.toHexString(data.length) + "\r\n" + event + "\r\n").getBytes(StandardCharsets.UTF_8);
      for (OutputStream out : clients) {
        try {
          out.write(chunk);
          out.flush();
        } catch (IOException e) {
          clients.remove(out);
        }
      }
    }

    @Override
    public void close() throws IOException {
      server.close();
    }
  }
}
