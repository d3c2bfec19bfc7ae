package org.civicsync.testing.link;

import java.time.Duration;
import java.util.Locale;
import java.util.Objects;

/**
 * How a {@link FaultyLink} behaves: the shape of the network (bandwidth and latency), packet loss,
 * and the probabilities of the HTTP-aware faults. Immutable; change one property with a {@code
 * with…} method, which returns a new profile.
 *
 * <h2>The network</h2>
 *
 * <ul>
 *   <li><b>Bandwidth</b>, per direction, in bits per second (0 = unlimited): a stream of {@code N}
 *       bytes takes {@code N * 8 / rate} seconds to cross the link. The link reads from the sender
 *       no faster than that, so the sender feels the back-pressure of a slow link.
 *   <li><b>Latency</b>, one way: every byte is delivered that much later than it finished crossing
 *       the link, in order. A request/response round trip therefore costs twice the latency plus
 *       the transfer times of the request and of the response. A new connection's first byte
 *       waits one round trip more, for TCP's handshake (TLS's is not emulated).
 *   <li><b>Loss</b>: each stream is cut into packets of {@link #packetBytes()} bytes (counted from
 *       the start of the stream, so the cut does not depend on how the bytes happened to be read);
 *       each packet is lost with probability {@link #loss()}, and a lost packet is emulated as a
 *       connection reset: the bytes before it are delivered, then both the client's and the
 *       server's connection are reset (TCP RST). A long transfer is lost more often than a short
 *       one: with loss {@code p}, a stream of {@code k} packets gets through whole with probability
 *       {@code (1-p)^k}.
 * </ul>
 *
 * <h2>HTTP faults</h2>
 *
 * <p>When the client speaks HTTP/1.x, each request on a connection (keep-alive connections carry
 * several) independently draws these faults, each with its own probability. At most one of {@code
 * resetMidRequest}, {@code lostAck} and {@code duplicateRequest} applies to a request (in that
 * order of precedence); {@code delayResponse} combines with {@code duplicateRequest} and with no
 * fault; {@code reorder} combines with any of them. A connection that is not HTTP gets only the
 * network faults.
 *
 * <ul>
 *   <li>{@link #lostAck()}: the request is forwarded completely, the server's complete response is
 *       read, and instead of delivering it the link resets the connection (the client's and the
 *       server's side): the server committed, the client never learns it. Earlier responses on the
 *       same keep-alive connection are delivered first.
 *   <li>{@link #duplicateRequest()}: the request is forwarded as usual; once the server's response
 *       to it is complete, the link sends the same request bytes again on a new connection to the
 *       server, waits for that second response and discards it, then delivers the first response.
 *       So when the client has its (one) response, the server has answered the request twice.
 *   <li>{@link #resetMidRequest()}: the request head is forwarded, then a random strict prefix of
 *       its body (possibly empty), then both sides are reset; a request without a body is cut
 *       inside its head instead. The server never sees a complete request; the client gets a reset.
 *   <li>{@link #delayResponse()}: the response is held for an extra time, uniformly random between
 *       half of {@link #delayResponseMax()} and all of it, before it starts crossing the link.
 *       Interim ({@code 100 Continue}) responses are not held.
 *   <li>{@link #reorder()}: the request is held before it enters the link, uniformly random between
 *       half of {@link #reorderMax()} and all of it, so that requests on connections opened later
 *       can overtake it.
 * </ul>
 *
 * @param name a label for reports
 * @param upBitsPerSecond bandwidth from the client to the server; 0 = unlimited
 * @param downBitsPerSecond bandwidth from the server to the client; 0 = unlimited
 * @param latency one-way delay added to every byte, in each direction
 * @param loss probability that a packet is lost (emulated as a reset of the connection)
 * @param packetBytes the size of a packet: the unit of loss
 * @param lostAck probability that a request's response is dropped and the client reset
 * @param duplicateRequest probability that a request is sent to the server twice
 * @param resetMidRequest probability that a request is cut and both sides reset
 * @param delayResponse probability that a response is held for an extra time
 * @param delayResponseMax the longest extra time a delayed response is held
 * @param reorder probability that a request is held back so that later connections overtake it
 * @param reorderMax the longest time a reordered request is held
 */
public record LinkProfile(
    String name,
    long upBitsPerSecond,
    long downBitsPerSecond,
    Duration latency,
    double loss,
    int packetBytes,
    double lostAck,
    double duplicateRequest,
    double resetMidRequest,
    double delayResponse,
    Duration delayResponseMax,
    double reorder,
    Duration reorderMax) {

  /** The default packet size: a typical TCP segment on Ethernet. */
  public static final int DEFAULT_PACKET_BYTES = 1460;

  /** Loopback as it is: no limits, no delay, no faults. */
  public static final LinkProfile PERFECT =
      new LinkProfile(
          "perfect", 0, 0, Duration.ZERO, 0, DEFAULT_PACKET_BYTES, 0, 0, 0, 0,
          Duration.ofSeconds(1), 0, Duration.ofMillis(250));

  /** A rural 2G (GPRS) cell: 18 kbit/s up, 20 kbit/s down, 650 ms one way, 2 % packet loss. */
  public static final LinkProfile TWO_G_RURAL =
      PERFECT.withName("2G rural").withBandwidth(18_000, 20_000)
          .withLatency(Duration.ofMillis(650)).withLoss(0.02);

  /** An urban 2G (GPRS) cell: 32 kbit/s up, 35 kbit/s down, 650 ms one way, no loss. */
  public static final LinkProfile TWO_G_URBAN =
      PERFECT.withName("2G urban").withBandwidth(32_000, 35_000)
          .withLatency(Duration.ofMillis(650));

  /** A lossy EDGE cell: 200 kbit/s up, 240 kbit/s down, 420 ms one way, 1 % packet loss. */
  public static final LinkProfile EDGE_LOSSY =
      PERFECT.withName("EDGE lossy").withBandwidth(200_000, 240_000)
          .withLatency(Duration.ofMillis(420)).withLoss(0.01);

  /** A slow 3G cell: 330 kbit/s up, 780 kbit/s down, 100 ms one way, no loss. */
  public static final LinkProfile THREE_G_SLOW =
      PERFECT.withName("3G slow").withBandwidth(330_000, 780_000)
          .withLatency(Duration.ofMillis(100));

  /**
   * @throws IllegalArgumentException if a rate or a duration is negative, a probability is outside
   *     [0, 1], or {@code packetBytes} is outside [1, 1 MiB]
   */
  public LinkProfile {
    Objects.requireNonNull(name, "name");
    requireRate(upBitsPerSecond, "upBitsPerSecond");
    requireRate(downBitsPerSecond, "downBitsPerSecond");
    requireDuration(latency, "latency");
    requireProbability(loss, "loss");
    if (packetBytes < 1 || packetBytes > 1 << 20) {
      throw new IllegalArgumentException("packetBytes must be in [1, 1048576]: " + packetBytes);
    }
    requireProbability(lostAck, "lostAck");
    requireProbability(duplicateRequest, "duplicateRequest");
    requireProbability(resetMidRequest, "resetMidRequest");
    requireProbability(delayResponse, "delayResponse");
    requireDuration(delayResponseMax, "delayResponseMax");
    requireProbability(reorder, "reorder");
    requireDuration(reorderMax, "reorderMax");
  }

  /** This profile with another label. */
  public LinkProfile withName(String name) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with other bandwidths, in bits per second (0 = unlimited). */
  public LinkProfile withBandwidth(long upBitsPerSecond, long downBitsPerSecond) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another one-way latency. */
  public LinkProfile withLatency(Duration latency) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another per-packet loss probability. */
  public LinkProfile withLoss(double loss) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another packet size, the unit of {@link #loss()}. */
  public LinkProfile withPacketBytes(int packetBytes) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another probability of a lost acknowledgement per request. */
  public LinkProfile withLostAck(double probability) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, probability,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another probability of a duplicated request. */
  public LinkProfile withDuplicateRequest(double probability) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        probability, resetMidRequest, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another probability of a reset in the middle of a request. */
  public LinkProfile withResetMidRequest(double probability) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, probability, delayResponse, delayResponseMax, reorder, reorderMax);
  }

  /** This profile with another probability of a delayed response and the longest extra delay. */
  public LinkProfile withDelayResponse(double probability, Duration max) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, probability, max, reorder, reorderMax);
  }

  /** This profile with another probability of a held-back request and the longest hold. */
  public LinkProfile withReorder(double probability, Duration max) {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, loss, packetBytes, lostAck,
        duplicateRequest, resetMidRequest, delayResponse, delayResponseMax, probability, max);
  }

  /** This profile without any fault: same bandwidth and latency, no loss, no HTTP fault. */
  public LinkProfile withoutFaults() {
    return new LinkProfile(
        name, upBitsPerSecond, downBitsPerSecond, latency, 0, packetBytes, 0, 0, 0, 0,
        delayResponseMax, 0, reorderMax);
  }

  /**
   * This profile with time compressed by {@code factor}: bandwidths multiplied by it, latency and
   * the longest delays divided by it, probabilities and packet size unchanged. Every duration
   * measured through the scaled link is the original one divided by {@code factor}, so ratios of
   * durations are unchanged. A factor above 1 makes the link faster.
   *
   * @throws IllegalArgumentException if {@code factor} is not a positive finite number
   */
  public LinkProfile timeScale(double factor) {
    if (!(factor > 0) || Double.isInfinite(factor)) {
      throw new IllegalArgumentException("factor must be positive and finite: " + factor);
    }
    return new LinkProfile(
        name + " (time x" + formatFactor(factor) + ")",
        scaleRate(upBitsPerSecond, factor), scaleRate(downBitsPerSecond, factor),
        scale(latency, factor), loss, packetBytes, lostAck, duplicateRequest, resetMidRequest,
        delayResponse, scale(delayResponseMax, factor), reorder, scale(reorderMax, factor));
  }

  @Override
  public String toString() {
    StringBuilder s = new StringBuilder("LinkProfile[").append(name);
    s.append(": up ").append(rate(upBitsPerSecond)).append(", down ")
        .append(rate(downBitsPerSecond)).append(", latency ").append(latency.toMillis())
        .append(" ms");
    if (loss > 0) {
      s.append(", loss ").append(percent(loss)).append(" per ").append(packetBytes).append(" B");
    }
    appendFault(s, "lostAck", lostAck);
    appendFault(s, "duplicateRequest", duplicateRequest);
    appendFault(s, "resetMidRequest", resetMidRequest);
    if (delayResponse > 0) {
      appendFault(s, "delayResponse", delayResponse);
      s.append(" up to ").append(delayResponseMax.toMillis()).append(" ms");
    }
    if (reorder > 0) {
      appendFault(s, "reorder", reorder);
      s.append(" up to ").append(reorderMax.toMillis()).append(" ms");
    }
    return s.append(']').toString();
  }

  private static void appendFault(StringBuilder s, String label, double p) {
    if (p > 0) {
      s.append(", ").append(label).append(' ').append(percent(p));
    }
  }

  private static String rate(long bitsPerSecond) {
    return bitsPerSecond == 0 ? "unlimited" : bitsPerSecond + " bit/s";
  }

  private static String percent(double p) {
    return String.format(Locale.ROOT, "%.4g%%", p * 100);
  }

  private static String formatFactor(double factor) {
    return factor == Math.rint(factor) ? Long.toString((long) factor) : Double.toString(factor);
  }

  private static long scaleRate(long bitsPerSecond, double factor) {
    // An unlimited link stays unlimited; a limited one never becomes unlimited by rounding.
    return bitsPerSecond == 0 ? 0 : Math.max(1, Math.round(bitsPerSecond * factor));
  }

  private static Duration scale(Duration d, double factor) {
    return Duration.ofNanos(Math.round(d.toNanos() / factor));
  }

  private static void requireRate(long rate, String what) {
    if (rate < 0) {
      throw new IllegalArgumentException(what + " must not be negative: " + rate);
    }
  }

  private static void requireDuration(Duration d, String what) {
    Objects.requireNonNull(d, what);
    if (d.isNegative()) {
      throw new IllegalArgumentException(what + " must not be negative: " + d);
    }
  }

  private static void requireProbability(double p, String what) {
    if (!(p >= 0 && p <= 1)) {
      throw new IllegalArgumentException(what + " must be a probability in [0, 1]: " + p);
    }
  }
}
