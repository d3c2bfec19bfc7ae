package org.civicsync.testing.link;

import static java.nio.charset.StandardCharsets.US_ASCII;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;
import static org.assertj.core.api.Assertions.within;
import static org.civicsync.testing.link.LinkProfile.PERFECT;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpRequest.BodyPublishers;
import java.net.http.HttpResponse;
import java.net.http.HttpResponse.BodyHandlers;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

// A hung socket read must fail the test, never stall the build.
@org.junit.jupiter.api.Timeout(value = 60, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
class FaultyLinkTest {
  private static final long SEED = 20_260_501L;

  private TestServer server;
  private final List<AutoCloseable> resources = new ArrayList<>();

  @BeforeEach
  void startServer() throws IOException {
    server = new TestServer();
  }

  @AfterEach
  void closeEverything() throws Exception {
    for (AutoCloseable r : resources.reversed()) {
      r.close();
    }
    server.close();
  }

  // ---- forwarding ----

  @Test
  void aPerfectLinkCarriesKeepAliveRequestsChunkedBodiesAndLargeBodiesUnchanged() throws Exception {
    FaultyLink link = link(PERFECT, SEED);
    HttpClient client = client();
    byte[] small = "hello, clinic".getBytes(US_ASCII);
    byte[] large = TestServer.pattern(3 << 20);

    assertThat(client.send(post(link, "/echo", small), BodyHandlers.ofByteArray()).body())
        .isEqualTo(small);
    // Unknown length: the request goes chunked; ?chunked makes the response chunked too.
    HttpRequest chunked =
        request(link, "/echo?chunked")
            .POST(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(large)))
            .build();
    assertThat(client.send(chunked, BodyHandlers.ofByteArray()).body()).isEqualTo(large);
    HttpRequest expectContinue =
        request(link, "/echo").expectContinue(true).POST(BodyPublishers.ofByteArray(small)).build();
    assertThat(client.send(expectContinue, BodyHandlers.ofByteArray()).body()).isEqualTo(small);
    HttpResponse<byte[]> download =
        client.send(request(link, "/blob?size=2000000").build(), BodyHandlers.ofByteArray());
    assertThat(download.body()).isEqualTo(TestServer.pattern(2_000_000));
    assertThat(client.send(request(link, "/echo").build(), BodyHandlers.ofByteArray()).body())
        .isEmpty();

    LinkStats stats = link.stats();
    assertThat(stats.connections()).as("one keep-alive connection").isEqualTo(1);
    assertThat(stats.bytesUp()).isGreaterThan(large.length + 2L * small.length);
    assertThat(stats.bytesDown()).isGreaterThan(large.length + 2_000_000L);
    assertThat(stats.totalFaults()).isZero();
  }

  @Test
  void pipelinedHttpCrossesByteForByteAndEveryFinalResponseIsDelimited() throws Exception {
    byte[] requests =
        ascii(
            "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello"
                + "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
                + "HEAD /c HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /d HTTP/1.1\r\nHost: x\r\n\r\n");
    ByteArrayOutputStream responses = new ByteArrayOutputStream();
    responses.write(ascii("HTTP/1.1 100 Continue\r\n\r\n"));
    responses.write(ascii("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
    responses.write(
        ascii("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n"));
    // A HEAD response announces a length but has no body.
    responses.write(ascii("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"));
    responses.write(ascii("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"));
    responses.write(TestServer.pattern(1_000_000));
    byte[] answer = responses.toByteArray();
    CompletableFuture<byte[]> received = new CompletableFuture<>();
    RawServer raw =
        resource(
            new RawServer(
                s -> {
                  received.complete(s.getInputStream().readNBytes(requests.length));
                  s.getOutputStream().write(answer);
                  s.getInputStream().transferTo(OutputStream.nullOutputStream());
                }));
    // Each final response is held a little: the count of holds shows how many responses the link
    // delimited (a HEAD response read as having a body would swallow the next one).
    FaultyLink link =
        link(raw.address(), PERFECT.withDelayResponse(1.0, Duration.ofMillis(30)), SEED);

    try (Socket client = new Socket()) {
      client.connect(link.address());
      client.getOutputStream().write(requests);
      byte[] got = client.getInputStream().readNBytes(answer.length);
      assertThat(got).isEqualTo(answer);
    }
    assertThat(received.get(5, TimeUnit.SECONDS)).isEqualTo(requests);
    assertThat(link.faults())
        .extracting(InjectedFault::kind, InjectedFault::index)
        .containsExactly(
            tuple(FaultKind.DELAY_RESPONSE, 0L),
            tuple(FaultKind.DELAY_RESPONSE, 1L),
            tuple(FaultKind.DELAY_RESPONSE, 2L),
            tuple(FaultKind.DELAY_RESPONSE, 3L));
  }

  @Test
  void trafficThatIsNotHttpIsForwardedAsPlainBytesWithoutHttpFaults() throws Exception {
    RawServer echo = resource(RawServer.echo());
    LinkProfile httpFaults = PERFECT.withLostAck(1.0).withDuplicateRequest(1.0);
    FaultyLink link = link(echo.address(), httpFaults, SEED);
    byte[] data = TestServer.pattern(300_000);
    data[0] = 0x16; // a TLS record, say

    try (Socket client = new Socket()) {
      client.connect(link.address());
      CompletableFuture<Void> writer =
          CompletableFuture.runAsync(
              () -> {
                try {
                  client.getOutputStream().write(data);
                  client.shutdownOutput();
                } catch (IOException e) {
                  throw new RuntimeException(e);
                }
              });
      assertThat(client.getInputStream().readAllBytes()).isEqualTo(data);
      writer.get(5, TimeUnit.SECONDS);
    }
    assertThat(link.stats().totalFaults()).isZero();
    assertThat(link.stats().bytesUp()).isEqualTo(data.length);
  }

  // ---- HTTP faults ----

  @Test
  void lostAckLetsTheServerCommitWhileTheClientGetsAnIoException() throws Exception {
    FaultyLink link = link(PERFECT.withLostAck(1.0), SEED);

    HttpClient client = client();
    assertThatThrownBy(
            () -> client.send(post(link, "/record", ascii("push 1")), BodyHandlers.ofString()))
        .isInstanceOf(IOException.class);

    assertThat(server.handled).hasValue(1);
    assertThat(server.bodies).singleElement().isEqualTo(ascii("push 1"));
    assertThat(link.faults())
        .containsExactly(new InjectedFault(0, FaultKind.LOST_ACK, Direction.DOWN, 0));
  }

  @Test
  void aDuplicatedRequestReachesTheServerTwiceAndTheClientGetsOneResponse() throws Exception {
    FaultyLink link = link(PERFECT.withDuplicateRequest(1.0), SEED);

    HttpResponse<String> response =
        client().send(post(link, "/record", ascii("push 1")), BodyHandlers.ofString());
    assertThat(response.statusCode()).isEqualTo(200);
    assertThat(response.body()).isEqualTo("handled 1");
    assertThat(server.handled).as("the server answered both copies before the client's answer")
        .hasValue(2);
    assertThat(server.bodies).allSatisfy(b -> assertThat(b).isEqualTo(ascii("push 1")));

    // On the wire: exactly one response reaches the client.
    RawResult raw =
        rawExchange(
            link,
            ascii(
                "POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\n"
                    + "push 2"));
    assertThat(raw.error()).isNull();
    assertThat(raw.text().split("HTTP/1.1 ", -1)).hasSize(2);
    assertThat(server.handled).hasValue(4);

    // On a slow link too, where the last packet of the request is still crossing when it is read.
    link.setProfile(PERFECT.withBandwidth(1_000_000, 1_000_000).withDuplicateRequest(1.0));
    byte[] body = TestServer.pattern(20_000);
    assertThat(client().send(post(link, "/record", body), BodyHandlers.ofString()).statusCode())
        .isEqualTo(200);
    assertThat(server.handled).hasValue(6);
    assertThat(server.bodies.subList(4, 6)).allSatisfy(b -> assertThat(b).isEqualTo(body));
    assertThat(link.stats().faults(FaultKind.DUPLICATE_REQUEST)).isEqualTo(3);
  }

  @Test
  void aResetMidRequestLeavesTheServerWithoutACompleteRequest() throws Exception {
    FaultyLink link = link(PERFECT.withResetMidRequest(1.0), SEED);
    HttpClient client = client();
    byte[] body = TestServer.pattern(200_000);

    assertThatThrownBy(() -> client.send(post(link, "/record", body), BodyHandlers.ofString()))
        .isInstanceOf(IOException.class);
    HttpRequest chunked =
        request(link, "/record")
            .POST(BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(body)))
            .build();
    assertThatThrownBy(() -> client.send(chunked, BodyHandlers.ofString()))
        .isInstanceOf(IOException.class);

    await(() -> link.stats().activeConnections() == 0);
    Thread.sleep(200); // let the server notice
    assertThat(server.handled).hasValue(0);
    assertThat(link.stats().faults(FaultKind.RESET_MID_REQUEST)).isEqualTo(2);
    assertThat(link.stats().bytesUp()).isLessThan(2L * body.length);
  }

  @Test
  void aReorderedRequestIsOvertakenByALaterConnectionAndSetProfileAppliesToTheNextRequest()
      throws Exception {
    FaultyLink link = link(PERFECT.withReorder(1.0, Duration.ofMillis(800)), SEED);
    CompletableFuture<HttpResponse<Void>> first =
        client().sendAsync(request(link, "/arrive").header("X-Name", "first").build(),
            BodyHandlers.discarding());
    await(() -> !link.faults().isEmpty());
    link.setProfile(PERFECT);

    HttpResponse<Void> second =
        client().send(request(link, "/arrive").header("X-Name", "second").build(),
            BodyHandlers.discarding());

    assertThat(second.statusCode()).isEqualTo(204);
    assertThat(first.get(5, TimeUnit.SECONDS).statusCode()).isEqualTo(204);
    assertThat(server.arrivals).containsExactly("second", "first");
    assertThat(link.faults())
        .containsExactly(new InjectedFault(0, FaultKind.REORDER, Direction.UP, 0));
  }

  // ---- the network ----

  @Test
  void bandwidthMakesATransferTakeItsSizeOverTheRate() throws Exception {
    FaultyLink link = link(PERFECT, SEED);
    HttpClient client = client();
    client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding()); // warm up
    int size = 50_000;
    long rate = 400_000;
    double ideal = size * 8.0 / rate;

    link.setProfile(PERFECT.withBandwidth(rate, 0));
    long start = System.nanoTime();
    client.send(post(link, "/echo", TestServer.pattern(size)), BodyHandlers.discarding());
    double upload = seconds(start);

    link.setProfile(PERFECT.withBandwidth(0, rate));
    start = System.nanoTime();
    client.send(request(link, "/blob?size=" + size).build(), BodyHandlers.discarding());
    double download = seconds(start);

    assertThat(upload).isBetween(0.8 * ideal, 3 * ideal + 0.5);
    assertThat(download).isBetween(0.8 * ideal, 3 * ideal + 0.5);
  }

  @Test
  void latencyCostsTwoOneWayDelaysPerRoundTrip() throws Exception {
    FaultyLink link = link(PERFECT, SEED);
    HttpClient client = client();
    client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding()); // warm up
    Duration oneWay = Duration.ofMillis(100);
    int roundTrips = 5;

    link.setProfile(PERFECT.withLatency(oneWay));
    long start = System.nanoTime();
    for (int i = 0; i < roundTrips; i++) {
      client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding());
    }
    double perRoundTrip = seconds(start) / roundTrips;

    double ideal = 2 * oneWay.toNanos() / 1e9;
    assertThat(perRoundTrip).isBetween(0.8 * ideal, 3 * ideal + 0.2);
  }

  @Test
  void aNewConnectionWaitsOneRoundTripForItsHandshakeAndAKeptOneDoesNot() throws Exception {
    Duration oneWay = Duration.ofMillis(150);
    FaultyLink link = link(PERFECT.withLatency(oneWay), SEED);
    HttpClient client = client();
    long start = System.nanoTime();
    client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding());
    double first = seconds(start);
    start = System.nanoTime();
    client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding());
    double kept = seconds(start);

    double roundTrip = 2 * oneWay.toNanos() / 1e9;
    assertThat(link.stats().connections()).isEqualTo(1);
    assertThat(first).isBetween(2 * roundTrip * 0.9, 2 * roundTrip + 0.4);
    assertThat(kept).isBetween(roundTrip * 0.9, roundTrip + 0.25);
  }

  @Test
  void timeScaleShortensTransfersByItsFactor() throws Exception {
    FaultyLink link = link(PERFECT, SEED);
    HttpClient client = client();
    client.send(request(link, "/blob?size=10").build(), BodyHandlers.discarding()); // warm up
    LinkProfile slow = PERFECT.withBandwidth(80_000, 0).withLatency(Duration.ofMillis(100));
    byte[] body = TestServer.pattern(5_000);

    link.setProfile(slow);
    long start = System.nanoTime();
    client.send(post(link, "/echo", body), BodyHandlers.discarding());
    double normal = seconds(start);
    link.setProfile(slow.timeScale(4));
    start = System.nanoTime();
    client.send(post(link, "/echo", body), BodyHandlers.discarding());
    double fast = seconds(start);

    assertThat(normal).isGreaterThan(0.8 * (5_000 * 8.0 / 80_000 + 0.2));
    assertThat(normal / fast).isBetween(2.0, 8.0);
  }

  @Test
  void lossResetsConnectionsAtRoughlyTheConfiguredRatePerPacket() throws Exception {
    RawServer sink = resource(RawServer.sink());
    double loss = 0.05;
    FaultyLink link = link(sink.address(), PERFECT.withLoss(loss).withPacketBytes(100), SEED);
    byte[] data = TestServer.pattern(2_000); // 20 packets per connection

    int resets = 0;
    for (int i = 0; i < 200; i++) {
      try (Socket s = new Socket()) {
        s.connect(link.address());
        s.setSoTimeout(5_000);
        s.getOutputStream().write(data);
        s.shutdownOutput();
        s.getInputStream().readAllBytes();
      } catch (IOException e) {
        resets++;
      }
    }

    LinkStats stats = link.stats();
    long lost = stats.faults(FaultKind.LOSS);
    assertThat(stats.packetsUp()).isGreaterThan(1_500);
    assertThat((double) lost / stats.packetsUp()).isCloseTo(loss, within(0.025));
    assertThat(resets).isEqualTo((int) lost);
  }

  // ---- determinism, safety, lifecycle ----

  @Test
  void theSameSeedInjectsTheSameFaultsAtTheSamePlaces() throws Exception {
    LinkProfile everything =
        PERFECT.withPacketBytes(512).withLoss(0.01).withLostAck(0.15).withDuplicateRequest(0.15)
            .withResetMidRequest(0.1).withDelayResponse(0.15, Duration.ofMillis(20))
            .withReorder(0.15, Duration.ofMillis(20));

    Run first = run(everything, 42);
    Run again = run(everything, 42);
    Run other = run(everything, 43);

    assertThat(first.faults()).hasSizeGreaterThan(10);
    assertThat(again.faults()).isEqualTo(first.faults());
    assertThat(again.outcomes()).isEqualTo(first.outcomes());
    assertThat(other.faults()).isNotEqualTo(first.faults());
    assertThat(first.faults().stream().map(InjectedFault::kind).distinct())
        .containsExactlyInAnyOrder(FaultKind.values());
  }

  private record Run(List<InjectedFault> faults, List<String> outcomes) {}

  private Run run(LinkProfile profile, long seed) throws Exception {
    try (FaultyLink link = FaultyLink.start(server.address(), profile, seed)) {
      List<String> outcomes = new ArrayList<>();
      byte[] body = TestServer.pattern(3_000);
      for (int i = 0; i < 40; i++) {
        ByteArrayOutputStream request = new ByteArrayOutputStream();
        request.write(
            ascii(
                "POST /record HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n"
                    + "Connection: close\r\n\r\n"));
        request.write(body);
        RawResult result = rawExchange(link, request.toByteArray());
        boolean ok = result.error() == null && result.text().startsWith("HTTP/1.1 200");
        outcomes.add(ok ? "ok" : "reset");
      }
      await(() -> link.stats().activeConnections() == 0);
      assertThat(link.seed()).isEqualTo(seed);
      assertThat(link.toString()).contains("seed=" + seed);
      return new Run(link.faults(), outcomes);
    }
  }

  @Test
  void targetsOtherThanLoopbackAreRefused() throws Exception {
    for (InetSocketAddress target :
        List.of(
            new InetSocketAddress(InetAddress.getByAddress(new byte[] {(byte) 192, 0, 2, 1}), 80),
            new InetSocketAddress(InetAddress.getByAddress(new byte[] {10, 1, 2, 3}), 8080),
            new InetSocketAddress(InetAddress.getByAddress(new byte[] {0, 0, 0, 0}), 8080),
            InetSocketAddress.createUnresolved("localhost", 8080))) {
      assertThatThrownBy(() -> FaultyLink.start(target, PERFECT, SEED))
          .as("%s", target)
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void closeResetsConnectionsEndsEveryThreadAndReleasesThePort() throws Exception {
    FaultyLink link = link(PERFECT.withLatency(Duration.ofMillis(300)), SEED);
    int port = link.port();
    Socket idle = resource(new Socket());
    idle.connect(link.address());
    CompletableFuture<HttpResponse<Void>> inFlight =
        client().sendAsync(request(link, "/blob?size=10").build(), BodyHandlers.discarding());
    await(() -> link.stats().activeConnections() == 2);
    assertThat(link.liveThreads()).isGreaterThan(4);

    link.close();

    assertThat(link.liveThreads()).isZero();
    assertThat(link.stats().activeConnections()).isZero();
    idle.setSoTimeout(2_000);
    assertThat(readOrFail(idle.getInputStream())).isIn(-1, -2);
    assertThatThrownBy(() -> inFlight.get(5, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .hasCauseInstanceOf(IOException.class);
    InetAddress loopback = InetAddress.getByAddress(new byte[] {127, 0, 0, 1});
    try (ServerSocket again = new ServerSocket()) {
      again.setReuseAddress(true);
      again.bind(new InetSocketAddress(loopback, port));
    }
    assertThatThrownBy(() -> new Socket(loopback, port).close())
        .isInstanceOf(ConnectException.class);
    link.close(); // idempotent
  }

  // ---- helpers ----

  private FaultyLink link(LinkProfile profile, long seed) throws IOException {
    return link(server.address(), profile, seed);
  }

  private FaultyLink link(InetSocketAddress target, LinkProfile profile, long seed)
      throws IOException {
    return resource(FaultyLink.start(target, profile, seed));
  }

  private HttpClient client() {
    // HTTP/1.1 explicitly: the default would try an h2c upgrade.
    HttpClient client =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
    resources.add(client::shutdownNow);
    return client;
  }

  private <T extends AutoCloseable> T resource(T r) {
    resources.add(r);
    return r;
  }

  private static HttpRequest.Builder request(FaultyLink link, String path) {
    return HttpRequest.newBuilder(link.uri().resolve(path)).timeout(Duration.ofSeconds(10));
  }

  private static HttpRequest post(FaultyLink link, String path, byte[] body) {
    return request(link, path).POST(BodyPublishers.ofByteArray(body)).build();
  }

  private record RawResult(byte[] bytes, IOException error) {
    String text() {
      return new String(bytes, US_ASCII);
    }
  }

  /** Sends the bytes on a new connection and reads until the other side closes or resets. */
  private static RawResult rawExchange(FaultyLink link, byte[] request) throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    try (Socket s = new Socket()) {
      s.connect(link.address());
      s.setSoTimeout(10_000);
      try {
        s.getOutputStream().write(request);
        s.getInputStream().transferTo(got);
        return new RawResult(got.toByteArray(), null);
      } catch (IOException e) {
        return new RawResult(got.toByteArray(), e);
      }
    }
  }

  /** -1 at end of stream, -2 if the read failed (reset), the byte otherwise. */
  private static int readOrFail(InputStream in) {
    try {
      return in.read();
    } catch (IOException e) {
      return -2;
    }
  }

  private static void await(BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("condition not met within 10 s");
      }
      Thread.sleep(10);
    }
  }

  private static double seconds(long startNanos) {
    return (System.nanoTime() - startNanos) / 1e9;
  }

  private static byte[] ascii(String s) {
    return s.getBytes(US_ASCII);
  }
}
