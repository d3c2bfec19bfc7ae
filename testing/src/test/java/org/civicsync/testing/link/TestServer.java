package org.civicsync.testing.link;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A real HTTP server on loopback (the JDK's) that counts what it handled:
 *
 * <ul>
 *   <li>{@code /echo}: answers with the request body ({@code ?chunked} answers chunked);
 *   <li>{@code /record}: counts a request whose body it read completely, keeps the body;
 *   <li>{@code /blob?size=N}: answers N bytes;
 *   <li>{@code /arrive}: notes the {@code X-Name} header when the request arrives.
 * </ul>
 */
final class TestServer implements AutoCloseable {
  final AtomicInteger handled = new AtomicInteger();
  final AtomicInteger broken = new AtomicInteger();
  final List<byte[]> bodies = new CopyOnWriteArrayList<>();
  final List<String> arrivals = new CopyOnWriteArrayList<>();
  private final HttpServer server;
  private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();

  TestServer() throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
    server.setExecutor(executor);
    server.createContext("/echo", this::echo);
    server.createContext("/record", this::record);
    server.createContext("/blob", this::blob);
    server.createContext("/arrive", this::arrive);
    server.start();
  }

  InetSocketAddress address() {
    return server.getAddress();
  }

  private void echo(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] body = exchange.getRequestBody().readAllBytes();
      boolean chunked = "chunked".equals(exchange.getRequestURI().getQuery());
      // The JDK's server: 0 means chunked, -1 means no body.
      exchange.sendResponseHeaders(200, chunked ? 0 : body.length == 0 ? -1 : body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    }
  }

  private void record(HttpExchange exchange) throws IOException {
    try (exchange) {
      byte[] body;
      try (InputStream in = exchange.getRequestBody()) {
        body = in.readAllBytes();
      } catch (IOException e) {
        broken.incrementAndGet();
        throw e;
      }
      String declared = exchange.getRequestHeaders().getFirst("Content-Length");
      if (declared != null && Long.parseLong(declared) != body.length) {
        broken.incrementAndGet();
        return;
      }
      bodies.add(body);
      int n = handled.incrementAndGet();
      byte[] answer = ("handled " + n).getBytes(StandardCharsets.US_ASCII);
      exchange.sendResponseHeaders(200, answer.length);
      exchange.getResponseBody().write(answer);
    }
  }

  private void blob(HttpExchange exchange) throws IOException {
    try (exchange) {
      exchange.getRequestBody().readAllBytes();
      int size = Integer.parseInt(exchange.getRequestURI().getQuery().substring("size=".length()));
      exchange.sendResponseHeaders(200, size);
      exchange.getResponseBody().write(pattern(size));
    }
  }

  private void arrive(HttpExchange exchange) throws IOException {
    try (exchange) {
      arrivals.add(exchange.getRequestHeaders().getFirst("X-Name"));
      exchange.getRequestBody().readAllBytes();
      exchange.sendResponseHeaders(204, -1);
    }
  }

  /** Deterministic, not compressible by accident, easy to compare. */
  static byte[] pattern(int size) {
    byte[] b = new byte[size];
    long x = 0x2545F4914F6CDD1DL;
    for (int i = 0; i < size; i++) {
      x ^= x << 13;
      x ^= x >>> 7;
      x ^= x << 17;
      b[i] = (byte) x;
    }
    return b;
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
