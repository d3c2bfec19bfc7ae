package org.civicsync.server.store.sqlite;

import java.io.IOException;
import java.nio.file.Files;
import org.civicsync.server.store.ServerStore;
import org.civicsync.testing.ServerStoreContract;

class SqliteServerStoreTest extends ServerStoreContract {
  @Override
  protected ServerStore openStore() {
    try {
      return SqliteServerStore.open(Files.createTempDirectory("civicsync-sqlite-test").resolve("civicsync.db"));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
