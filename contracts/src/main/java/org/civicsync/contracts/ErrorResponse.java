package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * The body of every error response: {@code {"error":{"code","message","field"?}}}, and for a 412
 * {@code VERSION_MISMATCH} the current {@code record}.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ErrorResponse(ErrorDetail error, ServerRecord record) {
  public ErrorResponse(ErrorDetail error) {
    this(error, null);
  }
}
