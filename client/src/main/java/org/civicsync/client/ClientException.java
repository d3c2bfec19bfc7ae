package org.civicsync.client;

import java.util.Optional;

/**
 * A local operation was refused, with the code the server would give for the same change (e.g.
 * {@code VALIDATION_FAILED}, {@code RECORD_NOT_FOUND}) or a client-side one ({@code NOT_ENROLLED},
 * {@code UNKNOWN_COLLECTION}). Nothing was written.
 */
public final class ClientException extends RuntimeException {
  private final String code;
  private final Optional<String> field;

  public ClientException(String code, String message, Optional<String> field) {
    super(code + ": " + message);
    this.code = code;
    this.field = field;
  }

  public ClientException(String code, String message) {
    this(code, message, Optional.empty());
  }

  public String code() {
    return code;
  }

  /** A JSON Pointer to the offending field, when known (e.g. {@code /data/slotStart}). */
  public Optional<String> field() {
    return field;
  }
}
