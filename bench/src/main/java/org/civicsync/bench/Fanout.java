package org.civicsync.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongConsumer;
import org.civicsync.testing.Fixtures;

/**
 * Figure 5: {@code subscribers} live streams ({@code GET /v1/sync/stream}) held open while one
 * device commits changes; for each commit, the time from just before its push is sent until each
 * subscriber has the notice. The same subscribers, with the same client code, then listen to a
 * bare broadcaster in this process (a socket server that writes one line of text to every open
 * stream), triggered at the same moment relative to the measurement: what any broadcast of that
 * many streams costs on this machine.
 */
final class Fanout {
  record Result(int subscribers, int commits, double p50Ms, double p99Ms, double maxMs, double bareP50Ms, double bareP99Ms, double bareMaxMs,
      long missed) {
    double ratio() {
      return p99Ms / bareP99Ms;
    }
  }

  private Fanout() {}

  static Result run(Api api, String tenant, int subscribers, int commits) throws Exception {
    List<Api.Device> listeners = api.devices(tenant, subscribers);
    Api.Device writer = api.devices(tenant, 1).get(0);
    Latencies ours = new Latencies(subscribers, commits);
    HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    List<InputStream> open = new CopyOnWriteArrayList<>();
    CountDownLatch ready = new CountDownLatch(subscribers);
    for (int i = 0; i < subscribers; i++) {
      Api.Device d = listeners.get(i);
      int index = i;
      Thread.ofVirtual().start(() -> listen(client, api.base().resolve("/v1/sync/stream"), "Bearer " + d.token(), open, ready,
          at -> ours.arrived(index, at)));
    }
    if (!ready.await(60, TimeUnit.SECONDS)) {
      throw new IllegalStateException("only " + (subscribers - ready.getCount()) + " streams opened");
    }
    Thread.sleep(500);
    Fixtures fx = new Fixtures(77);
    for (int c = 0; c < commits; c++) {
      byte[] body = Api.gzip(Workload.json(new org.civicsync.contracts.PushRequest(List.of(
          org.civicsync.core.signing.Envelopes.sign(fx.create(fx.uuid()), tenant, writer.id(), writer.keys().privateKey())))));
      ours.start(c, System.nanoTime());
      api.push(writer, body);
      ours.await(c);
      Thread.sleep(100);
    }
    open.forEach(Fanout::closeQuietly);

    // The bare broadcaster, measured with the same listeners.
    Latencies bare = new Latencies(subscribers, commits);
    try (Bare b = new Bare()) {
      CountDownLatch bareReady = new CountDownLatch(subscribers);
      List<InputStream> bareOpen = new CopyOnWriteArrayList<>();
      for (int i = 0; i < subscribers; i++) {
        int index = i;
        Thread.ofVirtual().start(() -> listen(client, b.uri(), "Bearer bare", bareOpen, bareReady, at -> bare.arrived(index, at)));
      }
      if (!bareReady.await(60, TimeUnit.SECONDS) || !b.awaitClients(subscribers)) {
        throw new IllegalStateException("the bare broadcaster's streams did not open");
      }
      Thread.sleep(500);
      for (int c = 0; c < commits; c++) {
        bare.start(c, System.nanoTime());
        b.broadcast("event: changes\nid: " + (c + 1) + "\ndata: {\"head\":" + (c + 1) + "}\n\n");
        bare.await(c);
        Thread.sleep(100);
      }
      bareOpen.forEach(Fanout::closeQuietly);
    }
    double[] o = ours.sorted();
    double[] z = bare.sorted();
    return new Result(subscribers, commits, pct(o, 0.50), pct(o, 0.99), o[o.length - 1], pct(z, 0.50), pct(z, 0.99), z[z.length - 1],
        ours.missed() + bare.missed());
  }

  /** Reads a stream's lines; each {@code data:} line is a notice. */
  private static void listen(HttpClient client, URI uri, String auth, List<InputStream> open, CountDownLatch ready, LongConsumer notice) {
    try {
      HttpResponse<InputStream> r = client.send(HttpRequest.newBuilder(uri).header("Authorization", auth)
          .header("Accept", "text/event-stream").build(), HttpResponse.BodyHandlers.ofInputStream());
      open.add(r.body());
      ready.countDown();
      BufferedReader in = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
      for (String line = in.readLine(); line != null; line = in.readLine()) {
        if (line.startsWith("data:")) {
          notice.accept(System.nanoTime());
        }
      }
    } catch (IOException | InterruptedException closed) {
      // the run is over
    }
  }

  private static void closeQuietly(InputStream in) {
    try {
      in.close();
    } catch (IOException ignored) {
      // closing
    }
  }

  private static double pct(double[] sorted, double p) {
    return sorted[Math.min(sorted.length - 1, (int) Math.ceil(p * sorted.length) - 1)];
  }

  /** Arrival times per commit per subscriber; a subscriber's first notice after a commit's start counts for it. */
  private static final class Latencies {
    private final int subscribers;
    private final long[] starts;
    private final double[][] ms;
    private final AtomicInteger[] heard;
    private volatile int current = -1;
    private long missed;

    Latencies(int subscribers, int commits) {
      this.subscribers = subscribers;
      this.starts = new long[commits];
      this.ms = new double[commits][subscribers];
      this.heard = new AtomicInteger[commits];
      for (int c = 0; c < commits; c++) {
        Arrays.fill(ms[c], Double.NaN);
        heard[c] = new AtomicInteger();
      }
    }

    void start(int commit, long at) {
      starts[commit] = at;
      current = commit;
    }

    void arrived(int subscriber, long at) {
      int c = current;
      if (c < 0) {
        return; // heartbeats and the stream's first event before any commit
      }
      synchronized (ms[c]) {
        if (Double.isNaN(ms[c][subscriber])) {
          ms[c][subscriber] = (at - starts[c]) / 1e6;
          heard[c].incrementAndGet();
        }
      }
    }

    void await(int commit) throws InterruptedException {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (heard[commit].get() < subscribers && System.nanoTime() < deadline) {
        Thread.sleep(1);
      }
      missed += subscribers - heard[commit].get();
    }

    long missed() {
      return missed;
    }

    double[] sorted() {
      List<Double> all = new ArrayList<>();
      for (double[] row : ms) {
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
