package org.civicsync.client.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.civicsync.client.store.sqlite.Fixtures.id;
import static org.civicsync.client.store.sqlite.Fixtures.record;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.store.LocalRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The schema is created once, recorded in schema_version, and left alone on every later open. */
class MigrationTest {
  @TempDir
  Path dir;

  static List<String> rows(Path file, String sql) throws SQLException {
    List<String> out = new ArrayList<>();
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery(sql)) {
      int columns = rs.getMetaData().getColumnCount();
      while (rs.next()) {
        StringBuilder row = new StringBuilder();
        for (int i = 1; i <= columns; i++) {
          row.append(i > 1 ? "|" : "").append(rs.getString(i));
        }
        out.add(row.toString());
      }
    }
    return out;
  }

  @Test
  void aNewFileGetsTheWholeSchema() throws Exception {
    Path file = dir.resolve("device.db");
    SqliteLocalStore.open(file).close();
    assertThat(rows(file, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"))
        .containsExactly("crypto", "outbox", "records", "schema_version", "settings");
    assertThat(rows(file, "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name"))
        .containsExactly("outbox_record_seq_state", "outbox_state_seq", "records_dirty");
    assertThat(rows(file, "SELECT version FROM schema_version ORDER BY version"))
        .isEqualTo(java.util.stream.IntStream.rangeClosed(1, Schema.latest()).mapToObj(Integer::toString).toList());
    assertThat(rows(file, "PRAGMA journal_mode")).containsExactly("wal");
  }

  @Test
  void reopeningKeepsDataAndDoesNotRerunMigrations() throws Exception {
    reopens(dir.resolve("plain.db"), SqliteLocalStore::open);
    AtRestCipher key = Fixtures.randomKey();
    reopens(dir.resolve("sealed.db"), f -> SqliteLocalStore.open(f, key));
  }

  private void reopens(Path file, Function<Path, SqliteLocalStore> opener) throws Exception {
    LocalRecord r = record("appointments", id(1), "{\"patientName\":\"A\"}");
    try (SqliteLocalStore store = opener.apply(file)) {
      store.transaction(tx -> {
        tx.putRecord(r);
        tx.putSetting("pull.cursor", "c-9");
        return null;
      });
    }
    List<String> versions = rows(file, "SELECT version, applied_at FROM schema_version ORDER BY version");
    List<String> crypto = rows(file, "SELECT kdf, hex(salt), iterations, hex(check_value), created_at FROM crypto");
    assertThat(versions).hasSize(Schema.latest());
    Thread.sleep(5); // a re-run would record a later applied_at
    for (int i = 0; i < 3; i++) {
      try (SqliteLocalStore store = opener.apply(file)) {
        Optional<LocalRecord> read = store.transaction(tx -> tx.record("appointments", id(1)));
        assertThat(read).contains(r);
        Optional<String> cursor = store.transaction(tx -> tx.setting("pull.cursor"));
        assertThat(cursor).contains("c-9");
      }
    }
    assertThat(rows(file, "SELECT version, applied_at FROM schema_version ORDER BY version")).isEqualTo(versions);
    assertThat(rows(file, "SELECT kdf, hex(salt), iterations, hex(check_value), created_at FROM crypto")).isEqualTo(crypto);
  }

  @Test
  void aVersion1FileGetsTheOutboxIndexWithStatesAndKeepsItsOutbox() throws Exception {
    Path file = dir.resolve("v1.db");
    var pending = Fixtures.entry(1, "appointments", id(1), org.civicsync.client.outbox.EntryState.PENDING);
    try (SqliteLocalStore store = SqliteLocalStore.open(file)) {
      store.transaction(tx -> {
        tx.putEntry(pending);
        return null;
      });
    }
    // Back to the file a version-1 client left.
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement st = c.createStatement()) {
      st.execute("DROP INDEX outbox_record_seq_state");
      st.execute("CREATE INDEX outbox_record_seq ON outbox (collection, record_id, device_seq)");
      st.execute("DELETE FROM schema_version WHERE version > 1");
    }
    try (SqliteLocalStore store = SqliteLocalStore.open(file)) {
      List<org.civicsync.client.outbox.OutboxEntry> kept = store.transaction(tx -> tx.entriesOf("appointments", id(1)));
      assertThat(kept).containsExactly(pending);
    }
    assertThat(rows(file, "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name"))
        .containsExactly("outbox_record_seq_state", "outbox_state_seq", "records_dirty");
    assertThat(rows(file, "SELECT version FROM schema_version ORDER BY version")).containsExactly("1", "2");
  }

  @Test
  void anEmptyFileIsANewStore() throws Exception {
    Path file = dir.resolve("empty.db");
    Files.createFile(file);
    try (SqliteLocalStore store = SqliteLocalStore.open(file, Fixtures.randomKey())) {
      assertThat(store.encrypted()).isTrue();
    }
    assertThat(rows(file, "SELECT kdf FROM crypto")).containsExactly(SqliteLocalStore.KDF_APP_KEY);
  }

  @Test
  void aFileFromANewerClientIsRefusedAndLeftAlone() throws Exception {
    Path file = dir.resolve("device.db");
    SqliteLocalStore.open(file).close();
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file); Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO schema_version (version, applied_at) VALUES (" + (Schema.latest() + 1) + ", 'later')");
    }
    List<String> before = rows(file, "SELECT version, applied_at FROM schema_version ORDER BY version");
    assertThatThrownBy(() -> SqliteLocalStore.open(file)).isInstanceOf(IllegalStateException.class).hasMessageContaining("newer");
    assertThat(rows(file, "SELECT version, applied_at FROM schema_version ORDER BY version")).isEqualTo(before);
  }

  @Test
  void aRefusedOpenChangesNothing() throws Exception {
    Path file = dir.resolve("device.db");
    SqliteLocalStore.open(file, Fixtures.randomKey()).close();
    List<String> before = rows(file, "SELECT * FROM crypto");
    assertThatThrownBy(() -> SqliteLocalStore.open(file, Fixtures.randomKey())).isInstanceOf(AtRestCipher.WrongKeyException.class);
    assertThat(rows(file, "SELECT * FROM crypto")).isEqualTo(before);
    assertThat(rows(file, "SELECT version FROM schema_version")).hasSize(Schema.latest());
  }
}
