package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * One error: a catalogue code, a message for people, and where known the offending field as a
 * JSON Pointer (e.g. {@code /mutations/3/data/slotStart}).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ErrorDetail(String code, String message, String field) {
  public static ErrorDetail of(ErrorCode code, String message) {
    return new ErrorDetail(code.name(), message, null);
  }

  public static ErrorDetail of(ErrorCode code, String message, String field) {
    return new ErrorDetail(code.name(), message, field);
  }
}
