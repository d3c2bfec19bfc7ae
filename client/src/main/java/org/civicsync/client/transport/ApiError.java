package org.civicsync.client.transport;

import java.util.Optional;

/**
 * The server answered with an error body from its catalogue (docs/protocol.md): nothing was
 * changed by the request.
 */
public final class ApiError extends Exception {
  private final int status;
  private final String code;
  private final Optional<Long> retryAfterSeconds;

  public ApiError(int status, String code, String message, Optional<Long> retryAfterSeconds) {
    super(status + " " + code + ": " + message);
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }

  public int status() {
    return status;
  }

  /** The catalogue code, e.g. {@code TOKEN_EXPIRED}. */
  public String code() {
    return code;
  }

  public Optional<Long> retryAfterSeconds() {
    return retryAfterSeconds;
  }
}
