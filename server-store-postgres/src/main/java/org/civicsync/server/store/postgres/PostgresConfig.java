package org.civicsync.server.store.postgres;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * How to reach the PostgreSQL database and where in it CivicSync keeps its tables.
 *
 * @param jdbcUrl a {@code jdbc:postgresql:} URL; it may carry the user and password itself
 * @param user the role to log in as, or empty to take it from the URL (or the driver's default)
 * @param password the role's password, or empty when the URL carries it or none is needed
 * @param schema the schema that holds the tables, created by the migrations when missing: a
 *     lower-case SQL identifier such as {@value #DEFAULT_SCHEMA}
 * @param maxPoolSize most connections the store keeps open; at least 1
 */
public record PostgresConfig(String jdbcUrl, String user, String password, String schema, int maxPoolSize) {
  /** The schema used unless another is configured. */
  public static final String DEFAULT_SCHEMA = "civicsync";

  /** The pool size used unless another is configured. */
  public static final int DEFAULT_MAX_POOL_SIZE = 10;

  // Lower case only: PostgreSQL folds unquoted names to lower case, and keeping to names that
  // need no quoting means the schema reads the same in psql, Flyway and the driver.
  private static final Pattern SCHEMA = Pattern.compile("[a-z_][a-z0-9_]{0,62}");

  public PostgresConfig {
    Objects.requireNonNull(jdbcUrl, "jdbcUrl");
    Objects.requireNonNull(user, "user (empty for none)");
    Objects.requireNonNull(password, "password (empty for none)");
    Objects.requireNonNull(schema, "schema");
    if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
      throw new IllegalArgumentException("not a PostgreSQL JDBC URL (jdbc:postgresql://host:port/database): " + redactedUrl(jdbcUrl));
    }
    if (!SCHEMA.matcher(schema).matches()) {
      throw new IllegalArgumentException(
          "schema must be a lower-case identifier of letters, digits and '_' (at most 63), got '" + schema + "'");
    }
    if (maxPoolSize < 1) {
      throw new IllegalArgumentException("maxPoolSize must be at least 1, got " + maxPoolSize);
    }
  }

  /** A URL that carries any credentials itself, with the default schema and pool size. */
  public static PostgresConfig of(String jdbcUrl) {
    return new PostgresConfig(jdbcUrl, "", "", DEFAULT_SCHEMA, DEFAULT_MAX_POOL_SIZE);
  }

  /** This configuration logging in as {@code user} with {@code password}. */
  public PostgresConfig withCredentials(String user, String password) {
    return new PostgresConfig(jdbcUrl, user, password, schema, maxPoolSize);
  }

  /** This configuration with its tables in {@code schema}. */
  public PostgresConfig withSchema(String schema) {
    return new PostgresConfig(jdbcUrl, user, password, schema, maxPoolSize);
  }

  /** This configuration with at most {@code maxPoolSize} connections. */
  public PostgresConfig withMaxPoolSize(int maxPoolSize) {
    return new PostgresConfig(jdbcUrl, user, password, schema, maxPoolSize);
  }

  /** Never shows the password, neither the field nor one embedded in the URL; safe to log. */
  @Override
  public String toString() {
    return "PostgresConfig[jdbcUrl=" + redactedUrl(jdbcUrl) + ", user=" + user + ", password="
        + (password.isEmpty() ? "" : "***") + ", schema=" + schema + ", maxPoolSize=" + maxPoolSize + "]";
  }

  static String redactedUrl(String url) {
    return url.replaceAll("(?i)(password=)[^&]*", "$1***");
  }
}
