package org.civicsync.client.store.sqlite;

/** The SQLite file could not be read or written (I/O error, disk full, locked by another process). */
public final class SqliteStoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public SqliteStoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
