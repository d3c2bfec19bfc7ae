package org.civicsync.client.transport;

import static org.assertj.core.api.Assertions.assertThat;

import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The transport's request codings against a fake server (the JDK's HttpServer) that records what arrives. */
class UrlConnectionTransportTest {
  /** What one request brought: its coding and its body, decoded. */
  private record Received(String coding, String body) {}

  private HttpServer server;
  private final List<Received> received = new CopyOnWriteArrayList<>();
  private final AtomicBoolean takesZstd = new AtomicBoolean(true);
  /** The client port of each request's connection: one port, one connection. */
  private final List<Integer> clientPorts = new CopyOnWriteArrayList<>();

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.createContext("/", exchange -> {
      clientPorts.add(exchange.getRemoteAddress().getPort());
      String coding = String.valueOf(exchange.getRequestHeaders().getFirst("Content-Encoding"));
      byte[] raw = readAll(exchange.getRequestBody());
      int status = 200;
      String body;
      if (coding.equals("zstd") && !takesZstd.get()) {
        status = 415;
        body = "{\"error\":{\"code\":\"UNSUPPORTED_MEDIA_TYPE\",\"message\":\"no zstd here\"}}";
      } else {
        byte[] plain = coding.equals("zstd") ? com.github.luben.zstd.Zstd.decompress(raw, 10 << 20)
            : coding.equals("gzip") ? readAll(new GZIPInputStream(new java.io.ByteArrayInputStream(raw))) : raw;
        received.add(new Received(coding, new String(plain, StandardCharsets.UTF_8)));
        body = "{}";
      }
      exchange.getResponseHeaders().add("Accept-Encoding", takesZstd.get() ? "zstd, gzip" : "gzip");
      byte[] out = body.getBytes(StandardCharsets.UTF_8);
      exchange.sendResponseHeaders(status, out.length);
      exchange.getResponseBody().write(out);
      exchange.close();
    });
    server.start();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  private static byte[] readAll(InputStream in) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    in.transferTo(out);
    return out.toByteArray();
  }

  private static byte[] bigBody(int n) {
    StringBuilder b = new StringBuilder("{\"mutations\":[");
    for (int i = 0; i < n; i++) {
      b.append(i == 0 ? "" : ",").append("{\"collection\":\"appointments\",\"deviceSeq\":").append(i).append(",\"status\":\"booked\"}");
    }
    return b.append("]}").toString().getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void bodiesGoGzipUntilTheServerSaysItTakesZstdAndZstdFromThenOn() throws Exception {
    UrlConnectionTransport t = new UrlConnectionTransport(URI.create("http://127.0.0.1:" + server.getAddress().getPort()));
    byte[] body = bigBody(200);
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body, true));
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), "{\"small\":true}".getBytes(StandardCharsets.UTF_8)));

    assertThat(received).extracting(Received::coding).containsExactly("gzip", "zstd", "null");
    assertThat(received).extracting(Received::body).containsExactly(new String(body, StandardCharsets.UTF_8),
        new String(body, StandardCharsets.UTF_8), "{\"small\":true}");
  }

  @Test
  void successiveExchangesShareOneConnectionEvenAfterAnErrorAnswer() throws Exception {
    UrlConnectionTransport t = new UrlConnectionTransport(URI.create("http://127.0.0.1:" + server.getAddress().getPort()));
    byte[] body = bigBody(100);
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));
    t.send(new Transport.Request("GET", "/v1/sync/pull", Map.of(), new byte[0]));
    takesZstd.set(false); // the next push is answered 415 and sent again gzip'd
    Transport.Response r = t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));

    assertThat(r.status()).isEqualTo(200);
    assertThat(clientPorts).hasSize(5).containsOnly(clientPorts.get(0));
  }

  @Test
  void aServerThatNoLongerTakesZstdGetsTheSameBodyGzipInTheSameSend() throws Exception {
    UrlConnectionTransport t = new UrlConnectionTransport(URI.create("http://127.0.0.1:" + server.getAddress().getPort()));
    byte[] body = bigBody(100);
    t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));
    takesZstd.set(false);
    Transport.Response r = t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));
    Transport.Response after = t.send(new Transport.Request("POST", "/v1/sync/push", Map.of(), body));

    assertThat(r.status()).isEqualTo(200);
    assertThat(after.status()).isEqualTo(200);
    assertThat(received).extracting(Received::coding).containsExactly("gzip", "gzip", "gzip");
  }

  @Test
  void theServersOwnWorkIsReadFromServerTimingWhereverItsAppMetricStands() {
    assertThat(UrlConnectionTransport.appNanos("app;dur=43.5")).isEqualTo(43.5e6);
    assertThat(UrlConnectionTransport.appNanos("db;dur=3, app ; desc=\"push\" ; dur=12")).isEqualTo(12e6);
    assertThat(UrlConnectionTransport.appNanos("db;dur=3")).as("absent").isEqualTo(-1);
    assertThat(UrlConnectionTransport.appNanos("app;dur=soon")).as("not a number").isEqualTo(-1);
    assertThat(UrlConnectionTransport.appNanos("")).isEqualTo(-1);
  }
}
