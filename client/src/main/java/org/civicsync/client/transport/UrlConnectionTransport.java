package org.civicsync.client.transport;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/**
 * A {@link Transport} on {@link HttpURLConnection} (on every JVM and Android). Bodies over 1 KiB
 * are sent compressed: zstd (level 15) once the server has said it takes it ({@code
 * Accept-Encoding} in a response, RFC 7694) and when zstd-jni ({@code com.github.luben:zstd-jni})
 * is on the class path, gzip otherwise; responses are accepted gzip-compressed. Bodies go in fixed-length
 * streaming mode, which also stops {@code HttpURLConnection} from silently re-sending a POST after
 * a reset (it would, otherwise, and the server would see the push twice).
 *
 * <p>A {@linkplain Request#resumable() resumable} body of more than 4 KiB as sent is named by its
 * SHA-256 ({@code Upload-Key}); when an attempt to send it breaks off, the next attempt with the
 * same body sends only the rest: on 2G a reset half-way through a batch otherwise costs every byte
 * already across. Where the rest starts is reckoned, without asking, from how long the broken
 * attempt lasted and the link's rate and round trip as the last answers showed them (the server
 * times each named body's arrival, {@code Upload-Rate}, and its own work, {@code Server-Timing});
 * with nothing to reckon from yet, or when the whole body may have arrived, the transport asks the
 * server ({@code HEAD /v1/sync/uploads/{key}}), and only when the broken attempt had lasted long
 * enough for a question's round trip to pay (see {@code worthAsking}). It remembers only the last
 * broken body, in memory. A resumed attempt that the server refuses as not fitting what it holds (409 {@code
 * UPLOAD_MISMATCH}: nothing was read as a push, so nothing can have been applied) is sent once
 * more from where the answer says; that is the one request this transport repeats on its own.
 */
public final class UrlConnectionTransport implements Transport {
  private static final int GZIP_ABOVE = 1024;
  /**
   * zstd's level for request bodies: a phone spends milliseconds, 2G saves seconds. On batches of
   * mutations the levels above 15 (zstd's optimal parsers) found no fewer bytes and took two to
   * five times longer (docs/benchmarks.md, item 22: 6.6 against 30 ms for a batch of 100 here).
   */
  private static final int ZSTD_LEVEL = 15;
  /** Whether the server has said it takes zstd request bodies. */
  private volatile boolean serverTakesZstd;
  /** {@code Zstd.compress(byte[], int)} of zstd-jni when it is on the class path and loads, else null. */
  private static final java.lang.reflect.Method ZSTD = zstd();

  /** Smaller bodies go whole: the question of how much arrived costs a round trip. */
  private static final int RESUME_ABOVE = 4096;
  /** The last resumable body whose sending broke off, or null. */
  private volatile Broken broken;
  /** A running estimate of the round trip (from exchanges too small to take long otherwise), or -1. */
  private volatile long rttNanos = -1;
  /** How fast bodies crossed the link up, as the server timed their arrival ({@code Upload-Rate}), bytes/s; or -1. */
  private volatile double upBytesPerSecond = -1;
  /**
   * What a push on a kept connection took besides sending its body and the server's own work
   * ({@code Server-Timing: app}): the round trip and the answer's way down; or -1.
   */
  private volatile long overheadNanos = -1;
  /** Whether the next exchange opens a new connection: at first, and after one failed. */
  private volatile boolean fresh = true;
  /** The share of its reckoning a resumed body trusts (the rest is sent again, in case the link slowed). */
  private static final double RECKON_SHARE = 0.9;
  /** A request's head crosses before its body; at least this much of what crossed was head. */
  private static final int HEAD_ALLOWANCE = 600;

  /**
   * A body's key; how long the attempt that broke off had lasted when it did, from which offset it
   * had started, and whether it had opened its connection.
   */
  private record Broken(String key, long afterNanos, int from, boolean fresh) {}
  private final URI base;
  private final int connectMillis;
  private final int readMillis;

  /** @param base the server's URL, e.g. {@code https://sync.example.org} */
  public UrlConnectionTransport(URI base, Duration connectTimeout, Duration readTimeout) {
    String b = base.toString();
    this.base = URI.create(b.endsWith("/") ? b.substring(0, b.length() - 1) : b);
    this.connectMillis = (int) connectTimeout.toMillis();
    this.readMillis = (int) readTimeout.toMillis();
  }

  public UrlConnectionTransport(URI base) {
    this(base, Duration.ofSeconds(15), Duration.ofSeconds(120));
  }

  @Override
  public Response stream(Request request, EventSink sink) throws IOException {
    URL url = URI.create(base + request.path()).toURL();
    HttpURLConnection c = (HttpURLConnection) url.openConnection();
    try {
      c.setConnectTimeout(connectMillis);
      // The server sends a heartbeat every 15 s: a longer silence means the stream is dead.
      c.setReadTimeout(readMillis);
      c.setInstanceFollowRedirects(false);
      c.setUseCaches(false);
      c.setRequestProperty("Accept", "text/event-stream");
      for (Map.Entry<String, String> h : request.headers().entrySet()) {
        c.setRequestProperty(h.getKey(), h.getValue());
      }
      int status = c.getResponseCode();
      if (status != 200) {
        InputStream err = c.getErrorStream();
        byte[] raw = err == null ? new byte[0] : readAll(err);
        Map<String, String> headers = new HashMap<>();
        c.getHeaderFields().forEach((k, v) -> {
          if (k != null && !v.isEmpty()) {
            headers.put(k.toLowerCase(java.util.Locale.ROOT), v.get(0));
          }
        });
        return new Response(status, headers, raw, raw.length + 350L);
      }
      java.io.BufferedReader in = new java.io.BufferedReader(new java.io.InputStreamReader(c.getInputStream(),
          java.nio.charset.StandardCharsets.UTF_8));
      String event = "message";
      String id = "";
      StringBuilder data = new StringBuilder();
      for (String line; (line = in.readLine()) != null; ) {
        if (line.isEmpty()) {
          if (data.length() > 0 && !sink.event(event, id, data.toString())) {
            break;
          }
          event = "message";
          data.setLength(0);
        } else if (line.startsWith(":")) {
          if (!sink.heartbeat()) {
            break;
          }
        } else if (line.startsWith("event:")) {
          event = line.substring(6).trim();
        } else if (line.startsWith("id:")) {
          id = line.substring(3).trim();
        } else if (line.startsWith("data:")) {
          if (data.length() > 0) {
            data.append('\n');
          }
          data.append(line.substring(5).trim());
        }
      }
      return new Response(200, Map.of(), new byte[0], 0);
    } finally {
      c.disconnect();
    }
  }

  private static java.lang.reflect.Method zstd() {
    try {
      java.lang.reflect.Method m = Class.forName("com.github.luben.zstd.Zstd").getMethod("compress", byte[].class, int.class);
      m.invoke(null, new byte[] {'{', '}'}, 1); // loads the native library now, or fails now
      return m;
    } catch (ReflectiveOperationException | LinkageError | RuntimeException absent) {
      return null; // not on the class path, or no native library for this platform: gzip
    }
  }

  @Override
  public Response send(Request request) throws IOException {
    byte[] plain = request.body();
    String coding = plain.length <= GZIP_ABOVE ? "" : serverTakesZstd && ZSTD != null ? "zstd" : "gzip";
    Response r = send(request, plain, coding);
    if (r.status() == 415 && coding.equals("zstd")) {
      // The server no longer takes zstd (another instance, a proxy): nothing was read; gzip then.
      serverTakesZstd = false;
      r = send(request, plain, "gzip");
    }
    return r;
  }

  private Response send(Request request, byte[] plain, String coding) throws IOException {
    byte[] body = coding.equals("zstd") ? zstd(plain) : coding.equals("gzip") ? gzip(plain) : plain;
    if (!request.resumable() || body.length <= RESUME_ABOVE) {
      long t0 = System.nanoTime();
      Response r = exchange(request.method(), request.path(), request.headers(), body, coding, 0, Map.of());
      if (body.length == 0 && r.body().length < GZIP_ABOVE) {
        sampleRoundTrip(System.nanoTime() - t0);
      }
      return r;
    }
    String key = org.civicsync.core.canonical.Digests.sha256Base64Url(body);
    Map<String, String> upload = new HashMap<>();
    upload.put("Upload-Key", key);
    upload.put("Upload-Length", Integer.toString(body.length));
    long asked = 0;
    int offset = 0;
    Broken last = broken;
    boolean resuming = last != null && last.key().equals(key);
    OptionalInt reckoned = resuming ? reckon(last, body.length) : OptionalInt.empty();
    if (reckoned.isPresent()) {
      offset = reckoned.getAsInt();
    } else if (resuming && worthAsking(last.afterNanos())) {
      Map<String, String> auth = new HashMap<>();
      String authorization = request.headers().get("Authorization");
      if (authorization != null) {
        auth.put("Authorization", authorization);
      }
      long t0 = System.nanoTime();
      Response head = exchange("HEAD", "/v1/sync/uploads/" + key, auth, new byte[0], "", 0, Map.of());
      sampleRoundTrip(System.nanoTime() - t0);
      asked = head.wireBytes();
      offset = head.status() == 200 ? offset(head, body.length) : 0;
    }
    for (int attempt = 0; ; attempt++) {
      upload.put("Upload-Offset", Integer.toString(offset));
      Response r;
      boolean opens = fresh;
      long started = System.nanoTime();
      try {
        r = exchange(request.method(), request.path(), request.headers(), body, coding, offset, upload);
      } catch (java.net.ConnectException | java.net.UnknownHostException | java.net.NoRouteToHostException notSent) {
        throw notSent;
      } catch (IOException e) {
        broken = new Broken(key, System.nanoTime() - started, offset, opens);
        throw e;
      }
      broken = null;
      learn(r, body.length - offset, System.nanoTime() - started, opens);
      if (r.status() == 409 && attempt == 0 && r.headers().containsKey("upload-offset")) {
        // The server holds less than it said a moment ago (another instance, or it let the part go).
        offset = offset(r, body.length);
        asked += r.wireBytes();
        continue;
      }
      return new Response(r.status(), r.headers(), r.body(), r.wireBytes() + asked);
    }
  }

  /**
   * Where a broken body can be resumed without asking how much of it arrived: the part that
   * crossed while its attempt lasted, less the connection's opening (a round trip, when the
   * attempt opened one) and the reset's way back (half a round trip), at the rate the server
   * timed the last bodies at; of that, {@link #RECKON_SHARE}. Asking costs a round trip; a
   * reckoning that goes past what the server holds costs one too (it answers 409 with the right
   * offset, and the rest goes from there). Empty with nothing to reckon from yet, and when the
   * attempt lasted as long as the whole body takes: then it may all have arrived (the answer was
   * lost on its way back), and asking is answered "all of it".
   */
  private OptionalInt reckon(Broken b, int length) {
    double rate = upBytesPerSecond;
    long over = overheadNanos;
    if (rate <= 0 || over < 0) {
      return OptionalInt.empty();
    }
    double sending = (b.afterNanos() - (b.fresh() ? over : 0) - over / 2) / 1e9;
    if (sending >= (length - b.from()) / rate) {
      return OptionalInt.empty();
    }
    long crossed = (long) (RECKON_SHARE * (sending * rate - HEAD_ALLOWANCE));
    return OptionalInt.of((int) Math.max(b.from(), Math.min(length - 1L, b.from() + crossed)));
  }

  /** Takes the link's rate and an exchange's overhead from a resumable push's answer. */
  private void learn(Response r, int sent, long tookNanos, boolean opened) {
    String rate = r.headers().get("upload-rate");
    double app = appNanos(r.headers().getOrDefault("server-timing", ""));
    double bps;
    try {
      bps = rate == null ? -1 : Double.parseDouble(rate.trim());
    } catch (NumberFormatException e) {
      return;
    }
    if (r.status() != 200 || !(bps > 0) || app < 0) {
      return;
    }
    double before = upBytesPerSecond;
    upBytesPerSecond = before < 0 ? bps : (before * 3 + bps) / 4;
    long over = (long) (tookNanos - sent / bps * 1e9 - app);
    if (!opened && over > 0) {
      long o = overheadNanos;
      overheadNanos = o < 0 ? over : (o * 3 + over) / 4;
    }
  }

  /** The {@code app} metric's duration in a {@code Server-Timing} header, in nanoseconds; -1 if absent. */
  static double appNanos(String serverTiming) {
    for (String metric : serverTiming.split(",")) {
      String[] parts = metric.trim().split(";");
      if (parts[0].trim().equals("app")) {
        for (int i = 1; i < parts.length; i++) {
          String p = parts[i].trim();
          if (p.startsWith("dur=")) {
            try {
              return Double.parseDouble(p.substring(4).trim()) * 1e6;
            } catch (NumberFormatException e) {
              return -1;
            }
          }
        }
      }
    }
    return -1;
  }

  /**
   * Whether asking how much of a body arrived is likely to cost less than sending it all again.
   * The server holds about what crossed while the attempt lasted, less a one-way delay; asking
   * costs a round trip. So it pays when the attempt lasted more than one and a half round trips:
   * on 2G (1.3 s round trips, a batch taking seconds to send) nearly always, on a fast link whose
   * round trip outlasts the batch, rarely. With no estimate of the round trip yet, it asks.
   */
  private boolean worthAsking(long attemptNanos) {
    long rtt = rttNanos;
    return rtt < 0 || attemptNanos * 2 > rtt * 3;
  }

  /** Folds the duration of an exchange too small to be slowed by its bytes into the estimate. */
  private void sampleRoundTrip(long nanos) {
    long rtt = rttNanos;
    rttNanos = rtt < 0 ? nanos : (rtt * 3 + nanos) / 4;
  }

  private static int offset(Response r, int length) {
    String v = r.headers().getOrDefault("upload-offset", "0").trim();
    try {
      long n = Long.parseLong(v);
      return n < 0 || n > length ? 0 : (int) n;
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /** One exchange; {@code body} is as sent (in {@code coding}, "" for none), from {@code from} on. */
  private Response exchange(String method, String path, Map<String, String> requestHeaders, byte[] body, String coding, int from,
      Map<String, String> more) throws IOException {
    URL url = URI.create(base + path).toURL();
    HttpURLConnection c = (HttpURLConnection) url.openConnection();
    long wire = 0;
    try {
      c.setConnectTimeout(connectMillis);
      c.setReadTimeout(readMillis);
      c.setInstanceFollowRedirects(false);
      c.setUseCaches(false);
      c.setRequestMethod(method);
      c.setRequestProperty("Accept", "application/json");
      c.setRequestProperty("Accept-Encoding", "gzip");
      for (Map.Entry<String, String> h : requestHeaders.entrySet()) {
        c.setRequestProperty(h.getKey(), h.getValue());
      }
      for (Map.Entry<String, String> h : more.entrySet()) {
        c.setRequestProperty(h.getKey(), h.getValue());
      }
      int length = body.length - from;
      if (body.length > 0) {
        if (!coding.isEmpty()) {
          c.setRequestProperty("Content-Encoding", coding);
        }
        c.setRequestProperty("Content-Type", "application/json");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(length);
        try (OutputStream out = c.getOutputStream()) {
          out.write(body, from, length);
        }
      } else if (!method.equals("GET") && !method.equals("HEAD")) {
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(0);
        c.getOutputStream().close();
      }
      wire += length + 200; // request line and headers, roughly
      int status = c.getResponseCode();
      InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
      byte[] raw = in == null ? new byte[0] : readAll(in);
      wire += raw.length + 150;
      Map<String, String> headers = new HashMap<>();
      for (Map.Entry<String, List<String>> h : c.getHeaderFields().entrySet()) {
        if (h.getKey() != null && !h.getValue().isEmpty()) {
          headers.put(h.getKey().toLowerCase(Locale.ROOT), h.getValue().get(0));
        }
      }
      byte[] decoded = raw.length > 0 && "gzip".equalsIgnoreCase(headers.getOrDefault("content-encoding", "")) ? readAll(new GZIPInputStream(
          new java.io.ByteArrayInputStream(raw))) : raw;
      String accepts = headers.get("accept-encoding");
      if (accepts != null && ZSTD != null) {
        serverTakesZstd = java.util.Arrays.stream(accepts.split(",")).anyMatch(t -> t.trim().toLowerCase(Locale.ROOT).startsWith("zstd"));
      }
      // The body was read to its end and closed, and the connection is not dropped: the JDK (and
      // Android) keep it for the next exchange. On 2G a new connection costs a round trip of
      // 1.3 s before its first byte (and more with TLS), which a drain of 100 pushes would pay
      // 100 times.
      fresh = false;
      return new Response(status, headers, decoded, wire);
    } catch (IOException | RuntimeException e) {
      c.disconnect(); // a connection that failed mid-exchange is not reused
      fresh = true;
      throw e;
    }
  }

  private static byte[] zstd(byte[] raw) throws IOException {
    try {
      return (byte[]) ZSTD.invoke(null, raw, ZSTD_LEVEL);
    } catch (ReflectiveOperationException | RuntimeException e) {
      throw new IOException("zstd compression failed: " + e, e);
    }
  }

  private static byte[] gzip(byte[] raw) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length / 4 + 64);
    // The strongest level: on JSON batches it saves about 3 % of the bytes over the default (6)
    // for a few milliseconds of a phone's time per batch, and the bytes are what a 2G link charges.
    try (GZIPOutputStream z = new GZIPOutputStream(out) {
      {
        def.setLevel(java.util.zip.Deflater.BEST_COMPRESSION);
      }
    }) {
      z.write(raw);
    }
    return out.toByteArray();
  }

  // Not InputStream.readAllBytes: Android has it only from API 33.
  private static byte[] readAll(InputStream in) throws IOException {
    try (InputStream i = in) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      byte[] buf = new byte[16 * 1024];
      for (int n; (n = i.read(buf)) > 0; ) {
        out.write(buf, 0, n);
      }
      return out.toByteArray();
    }
  }
}

