package org.civicsync.client.store.sqlite;

import java.nio.file.Path;

/** The shared suite and the SQLite-specific tests on a plaintext file. */
class PlainSqliteLocalStoreTest extends AbstractSqliteLocalStoreTest {
  @Override
  SqliteLocalStore openFile(Path file) {
    return SqliteLocalStore.open(file);
  }
}
