package org.civicsync.server.store.postgres;

import org.civicsync.testing.TestPostgres;

/** The PostgreSQL database this module's tests run against (see {@link TestPostgres}), and stores on it. */
final class TestDatabases {
  static final String URL_ENV = TestPostgres.URL_ENV;

  private TestDatabases() {}

  static String jdbcUrl() {
    return TestPostgres.jdbcUrl();
  }

  static boolean embedded() {
    return TestPostgres.embedded();
  }

  static String freshSchema() {
    return TestPostgres.freshSchema();
  }

  /** A store in a fresh schema of the test database. */
  static PostgresServerStore openFreshStore(String schema) {
    return PostgresServerStore.open(PostgresConfig.of(jdbcUrl()).withSchema(schema));
  }

  static void dropSchema(String schema) {
    TestPostgres.dropSchema(schema);
  }
}
