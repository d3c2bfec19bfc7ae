package org.civicsync.server.store.postgres;

import org.civicsync.server.store.ServerStore;
import org.civicsync.testing.ServerStoreContract;
import org.junit.jupiter.api.AfterAll;

/** The store contract on PostgreSQL, in a schema of its own that is dropped afterwards. */
class PostgresServerStoreTest extends ServerStoreContract {
  private final String schema = TestDatabases.freshSchema();

  @Override
  protected ServerStore openStore() {
    return TestDatabases.openFreshStore(schema);
  }

  // Runs before the suite's own @AfterAll; closing twice is harmless.
  @AfterAll
  void dropSchema() {
    store.close();
    TestDatabases.dropSchema(schema);
  }
}
