package org.civicsync.client.store.sqlite;

import java.nio.file.Path;
import org.civicsync.client.crypto.AtRestCipher;

/** The shared suite and the SQLite-specific tests on a file encrypted at rest under an app key. */
class EncryptedSqliteLocalStoreTest extends AbstractSqliteLocalStoreTest {
  private final AtRestCipher key = Fixtures.randomKey();

  @Override
  SqliteLocalStore openFile(Path file) {
    return SqliteLocalStore.open(file, key);
  }
}
