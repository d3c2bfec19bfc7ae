package org.civicsync.client.store.sqlite;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.List;

/**
 * The file's schema as numbered migrations, applied in order inside the opening transaction and
 * recorded in {@code schema_version} (one row per migration applied). A migration is never edited
 * once released: changes go in a new one at the end of {@link #MIGRATIONS}.
 *
 * <p>Columns that can hold personal data ({@code records.server_data}, {@code records.data}, {@code
 * outbox.mutation}, {@code outbox.result}, {@code settings.value}) hold JSON/UTF-8 text in a
 * plaintext file and AES-GCM sealed BLOBs in an encrypted one, so they are declared {@code BLOB}
 * (no type affinity: the value is stored as given). Instants are ISO-8601 text (an exact round
 * trip), ids canonical lowercase UUID text, outbox states their wire names.
 */
final class Schema {
  private Schema() {}

  /** Migration {@code i + 1} is {@code MIGRATIONS.get(i)}: statements run in order. */
  static final List<List<String>> MIGRATIONS = List.of(
      List.of(
          """
          CREATE TABLE records (
            collection     TEXT    NOT NULL,
            record_id      TEXT    NOT NULL,
            server_version INTEGER NOT NULL,
            server_data    BLOB,
            data           BLOB,
            dirty          INTEGER NOT NULL CHECK (dirty IN (0, 1)),
            updated_at     TEXT    NOT NULL,
            PRIMARY KEY (collection, record_id)
          )""",
          "CREATE INDEX records_dirty ON records (collection, record_id) WHERE dirty = 1",
          """
          CREATE TABLE outbox (
            mutation_id TEXT    NOT NULL PRIMARY KEY,
            device_seq  INTEGER NOT NULL UNIQUE,
            collection  TEXT    NOT NULL,
            record_id   TEXT    NOT NULL,
            state       TEXT    NOT NULL,
            mutation    BLOB    NOT NULL,
            result      BLOB,
            attempts    INTEGER NOT NULL,
            created_at  TEXT    NOT NULL,
            updated_at  TEXT    NOT NULL
          )""",
          "CREATE INDEX outbox_state_seq ON outbox (state, device_seq)",
          "CREATE INDEX outbox_record_seq ON outbox (collection, record_id, device_seq)",
          """
          CREATE TABLE settings (
            key   TEXT NOT NULL PRIMARY KEY,
            value BLOB NOT NULL
          )""",
          // At most one row; its presence marks the file as encrypted at rest.
          """
          CREATE TABLE crypto (
            id          INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
            kdf         TEXT    NOT NULL,
            salt        BLOB,
            iterations  INTEGER,
            check_value BLOB    NOT NULL,
            created_at  TEXT    NOT NULL
          )"""),
      // 2: the record index also carries the state, so "does this record have an entry in flight"
      // (asked of every dirty record before each push) is answered from the index alone.
      List.of(
          "CREATE INDEX outbox_record_seq_state ON outbox (collection, record_id, device_seq, state)",
          "DROP INDEX outbox_record_seq"));

  /** The version a file has once every migration ran. */
  static int latest() {
    return MIGRATIONS.size();
  }

  /**
   * Brings the schema up to date; to be called inside a write transaction.
   *
   * @return the version the file had before (0: a new file)
   */
  static int migrate(Connection c) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)");
    }
    int current = current(c);
    if (current > latest()) {
      throw new IllegalStateException("the local database has schema version " + current + ", newer than this client supports ("
          + latest() + "): update the app");
    }
    for (int v = current + 1; v <= latest(); v++) {
      try (Statement st = c.createStatement()) {
        for (String sql : MIGRATIONS.get(v - 1)) {
          st.execute(sql);
        }
      }
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")) {
        ps.setInt(1, v);
        ps.setString(2, Instant.now().toString());
        ps.executeUpdate();
      }
    }
    return current;
  }

  static int current(Connection c) throws SQLException {
    try (Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT COALESCE(MAX(version), 0) FROM schema_version")) {
      return rs.next() ? rs.getInt(1) : 0;
    }
  }
}
