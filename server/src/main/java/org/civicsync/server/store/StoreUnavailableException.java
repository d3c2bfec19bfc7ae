package org.civicsync.server.store;

/** The database could not be reached or failed; the operation changed nothing. */
public final class StoreUnavailableException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public StoreUnavailableException(String message, Throwable cause) {
    super(message, cause);
  }
}
