package org.civicsync.contracts;

/** The body of every error response: {@code {"error":{"code","message","field"?}}}. */
public record ErrorResponse(ErrorDetail error) {}
