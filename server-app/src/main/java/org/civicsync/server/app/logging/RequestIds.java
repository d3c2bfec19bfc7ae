package org.civicsync.server.app.logging;

import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Optional;

/**
 * Request ids: the one a reverse proxy or client sent in {@code X-Request-Id} when it is a
 * plain token (letters, digits, {@code -_.:}, at most 64 characters, so it cannot smuggle
 * anything into a log line), otherwise a new random one.
 */
public final class RequestIds {
  /** The header that carries it, in requests and in every response. */
  public static final String HEADER = "X-Request-Id";
  /** The key under which it is in the logging context (and in each JSON log line). */
  public static final String MDC_KEY = "requestId";

  private static final SecureRandom RANDOM = new SecureRandom();

  private RequestIds() {}

  public static String of(Optional<String> sent) {
    return sent.map(String::trim).filter(s -> !s.isEmpty() && s.length() <= 64 && s.matches("[A-Za-z0-9._:-]+"))
        .orElseGet(() -> {
          byte[] b = new byte[8];
          RANDOM.nextBytes(b);
          return HexFormat.of().formatHex(b);
        });
  }
}
