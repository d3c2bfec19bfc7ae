package org.civicsync.server;

import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;

/**
 * A whole-request failure with a catalogue code; the HTTP layer turns it into the error body and
 * the code's status. Thrown before anything is written, so the request changes nothing.
 */
public final class ApiException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final ErrorCode code;
  private final String field;

  public ApiException(ErrorCode code, String message) {
    this(code, message, null);
  }

  public ApiException(ErrorCode code, String message, String field) {
    super(message, null, false, false);
    this.code = code;
    this.field = field;
  }

  public ErrorCode code() {
    return code;
  }

  public ErrorDetail detail() {
    return ErrorDetail.of(code, getMessage(), field);
  }
}
