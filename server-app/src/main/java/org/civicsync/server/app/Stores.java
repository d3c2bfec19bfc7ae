package org.civicsync.server.app;

import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.postgres.PostgresConfig;
import org.civicsync.server.store.postgres.PostgresServerStore;
import org.civicsync.server.store.sqlite.SqliteServerStore;

/** Opens the store a configuration names: PostgreSQL for a {@code jdbc:postgresql:} URL, else SQLite. */
final class Stores {
  /** File name of the embedded database inside the data directory. */
  static final String SQLITE_FILE = "civicsync.db";

  private Stores() {}

  static ServerStore open(ServerConfig config) {
    if (config.dbUrl().isPresent()) {
      String url = config.dbUrl().get();
      if (!url.startsWith("jdbc:postgresql:")) {
        throw new IllegalArgumentException("--db-url must be a jdbc:postgresql:// URL, got " + url);
      }
      return PostgresServerStore.open(new PostgresConfig(url, config.dbUser().orElse(""),
          config.dbPassword().orElse(""), config.dbSchema(), PostgresConfig.DEFAULT_MAX_POOL_SIZE));
    }
    return SqliteServerStore.open(config.dataDir().resolve(SQLITE_FILE));
  }

  static String describe(ServerConfig config) {
    return config.dbUrl().map(u -> "PostgreSQL " + u.replaceAll("password=[^&]*", "password=***") + " schema " + config.dbSchema())
        .orElse("SQLite " + config.dataDir().resolve(SQLITE_FILE).toAbsolutePath());
  }
}
