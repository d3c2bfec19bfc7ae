package org.civicsync.server.store;

/**
 * The database could not be reached or failed. Usually the operation changed nothing; when the
 * connection broke during commit its outcome is unknown, and the client's retry of the same
 * mutations is what makes that safe (it either applies them or replays their stored results).
 */
public final class StoreUnavailableException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public StoreUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
