package org.civicsync.client.store.sqlite;

import java.nio.file.Path;
import org.civicsync.client.store.InMemoryLocalStore;
import org.civicsync.client.store.LocalStore;

/** The reference implementation passes the shared suite: it pins the semantics the SQLite store must match. */
class InMemoryLocalStoreTest extends AbstractLocalStoreTest {
  @Override
  LocalStore newStore(Path dir) {
    return new InMemoryLocalStore();
  }
}
