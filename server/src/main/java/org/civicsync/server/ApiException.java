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
  private final int status;
  private final transient org.civicsync.contracts.ServerRecord record;

  public ApiException(ErrorCode code, String message) {
    this(code, message, null);
  }

  public ApiException(ErrorCode code, String message, String field) {
    this(code, message, field, code.httpStatus(), null);
  }

  /**
   * With an HTTP status of its own (a per-mutation code answering a whole request, as the records
   * API does with 422) and, for a version mismatch, the current record.
   */
  public ApiException(ErrorCode code, String message, String field, int status, org.civicsync.contracts.ServerRecord record) {
    super(message, null, false, false);
    this.code = code;
    this.field = field;
    this.status = status;
    this.record = record;
  }

  public ErrorCode code() {
    return code;
  }

  /** The HTTP status to answer with. */
  public int status() {
    return status == 200 ? 422 : status;
  }

  /** The current record, for a version mismatch; {@code null} otherwise. */
  public org.civicsync.contracts.ServerRecord record() {
    return record;
  }

  public ErrorDetail detail() {
    return ErrorDetail.of(code, getMessage(), field);
  }
}
