package org.civicsync.client.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.civicsync.client.store.sqlite.Fixtures.T0;
import static org.civicsync.client.store.sqlite.Fixtures.id;
import static org.civicsync.client.store.sqlite.Fixtures.json;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.crypto.AtRestCipher.WrongKeyException;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.RecordQuery;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.ServerRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Encryption at rest: no plaintext in the files, the right key or nothing, values bound to their cells. */
class EncryptionTest {
  static final String NAME = "Nimali Perera";
  static final String PHONE = "+94771234567";
  static final String ADDRESS = "12 Lake Road, Badulla";
  static final List<String> SECRETS = List.of(NAME, PHONE, ADDRESS);
  static final char[] PASSPHRASE = "correct horse battery staple".toCharArray();

  @TempDir
  Path dir;

  /** What a field device holds about a patient: records, outbox entries with answers, settings. */
  static final class Written {
    final List<LocalRecord> records = new ArrayList<>();
    final List<OutboxEntry> entries = new ArrayList<>();
  }

  static Written writePatients(LocalStore store) {
    Written w = new Written();
    String person = "{\"patientName\":\"" + NAME + "\",\"phone\":\"" + PHONE + "\",\"address\":\"" + ADDRESS + "\",\"clinicId\":\"clinic-badulla-03\"}";
    store.transaction(tx -> {
      for (int i = 1; i <= 3; i++) {
        LocalRecord r = new LocalRecord("appointments", id(i), i, json(person), json(person.replace("clinic-badulla-03", "clinic-" + i)),
            true, T0);
        tx.putRecord(r);
        w.records.add(r);
        Mutation m = new Mutation(UUID.randomUUID(), i, "appointments", id(i), MutationOp.UPDATE, i, json(person), "001795331564120-0000" + i
            + "-tablet1", T0.toString()).withSignature("sig" + i);
        ServerRecord server = new ServerRecord("appointments", id(i), i + 1, false, json(person), T0);
        Optional<MutationResult> result = i == 1 ? Optional.empty()
            : Optional.of(MutationResult.conflict(m.mutationId(), id(i), new ErrorDetail("CONFLICT", NAME + " changed on both sides", null),
                server, UUID.randomUUID(), List.of("phone")));
        OutboxEntry e = new OutboxEntry(m, i == 1 ? EntryState.PENDING : EntryState.CONFLICT, result, i, T0, T0);
        tx.putEntry(e);
        w.entries.add(e);
      }
      tx.putSetting("device.profile", "{\"user\":\"" + NAME + "\",\"phone\":\"" + PHONE + "\"}");
      return null;
    });
    return w;
  }

  static void assertReadsBack(LocalStore store, Written w) {
    store.transaction(tx -> {
      for (LocalRecord r : w.records) {
        assertThat(tx.record(r.collection(), r.recordId())).contains(r);
      }
      assertThat(tx.query(RecordQuery.all("appointments"))).containsExactlyElementsOf(w.records);
      assertThat(tx.query(new RecordQuery("appointments", Map.of("phone", PHONE), Optional.of("clinicId"), true, 0, 2)))
          .containsExactly(w.records.get(2), w.records.get(1));
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 10)).containsExactlyElementsOf(w.entries);
      assertThat(tx.setting("device.profile")).contains("{\"user\":\"" + NAME + "\",\"phone\":\"" + PHONE + "\"}");
      return null;
    });
  }

  /** The files SQLite keeps the database in: the main file, and the WAL and its index when present. */
  static List<Path> databaseFiles(Path file) {
    List<Path> out = new ArrayList<>();
    for (String suffix : List.of("", "-wal", "-shm", "-journal")) {
      Path p = file.resolveSibling(file.getFileName() + suffix);
      if (Files.exists(p)) {
        out.add(p);
      }
    }
    return out;
  }

  static boolean contains(Path file, String needle) throws IOException {
    byte[] hay = Files.readAllBytes(file);
    byte[] n = needle.getBytes(StandardCharsets.UTF_8);
    outer:
    for (int i = 0; i + n.length <= hay.length; i++) {
      for (int j = 0; j < n.length; j++) {
        if (hay[i + j] != n[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }

  static void assertNoPlaintext(Path file) throws IOException {
    List<Path> files = databaseFiles(file);
    assertThat(files).isNotEmpty();
    for (Path p : files) {
      for (String secret : SECRETS) {
        assertThat(contains(p, secret)).as("%s holds %s", p.getFileName(), secret).isFalse();
      }
    }
  }

  @Test
  void thePlaintextControlShowsTheScanFindsData() throws Exception {
    Path file = dir.resolve("plain.db");
    try (SqliteLocalStore store = SqliteLocalStore.open(file)) {
      writePatients(store);
      assertThat(store.encrypted()).isFalse();
    }
    assertThat(contains(file, NAME)).isTrue();
    assertThat(contains(file, PHONE)).isTrue();
  }

  @Test
  void aPassphraseFileHoldsNoPlaintextAndOpensOnlyWithItsPassphrase() throws Exception {
    Path file = dir.resolve("device.db");
    Written w;
    try (SqliteLocalStore store = SqliteLocalStore.openWithPassphrase(file, PASSPHRASE)) {
      assertThat(store.encrypted()).isTrue();
      w = writePatients(store);
      // While open, the committed data sits in the WAL: scan it too.
      assertThat(file.resolveSibling("device.db-wal")).exists();
      assertNoPlaintext(file);
      assertReadsBack(store, w);
    }
    // After close (checkpointed into the main file).
    assertNoPlaintext(file);
    // The scan is not blind: the clear index columns are in the file.
    assertThat(contains(file, "appointments")).isTrue();
    assertThat(contains(file, id(1).toString())).isTrue();

    Optional<byte[]> salt = SqliteLocalStore.saltOf(file);
    assertThat(salt).isPresent();
    assertThat(salt.get()).hasSize(16);

    assertThatThrownBy(() -> SqliteLocalStore.openWithPassphrase(file, "correct horse battery stapler".toCharArray()))
        .isInstanceOf(WrongKeyException.class);
    assertThatThrownBy(() -> SqliteLocalStore.open(file, Fixtures.randomKey())).isInstanceOf(WrongKeyException.class);
    assertThatThrownBy(() -> SqliteLocalStore.open(file))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("encrypted at rest");

    try (SqliteLocalStore store = SqliteLocalStore.openWithPassphrase(file, PASSPHRASE)) {
      assertReadsBack(store, w);
    }
    // An app that derives (and caches) the key itself, from the file's salt.
    try (SqliteLocalStore store = SqliteLocalStore.open(file, AtRestCipher.fromPassphrase(PASSPHRASE, salt.get()))) {
      assertReadsBack(store, w);
    }
    assertNoPlaintext(file);
  }

  @Test
  void anAppKeyFileOpensOnlyWithThatKey() throws Exception {
    Path file = dir.resolve("device.db");
    byte[] key = new byte[32];
    new java.security.SecureRandom().nextBytes(key);
    Written w;
    try (SqliteLocalStore store = SqliteLocalStore.open(file, AtRestCipher.withKey(key))) {
      w = writePatients(store);
      assertNoPlaintext(file);
    }
    assertNoPlaintext(file);
    assertThat(SqliteLocalStore.saltOf(file)).isEmpty();
    assertThatThrownBy(() -> SqliteLocalStore.open(file, Fixtures.randomKey())).isInstanceOf(WrongKeyException.class);
    assertThatThrownBy(() -> SqliteLocalStore.open(file)).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> SqliteLocalStore.openWithPassphrase(file, PASSPHRASE))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("app key");
    try (SqliteLocalStore store = SqliteLocalStore.open(file, AtRestCipher.withKey(key))) {
      assertReadsBack(store, w);
    }
  }

  @Test
  void aPlaintextFileCannotBeOpenedWithAKey() {
    Path file = dir.resolve("plain.db");
    SqliteLocalStore.open(file).close();
    assertThatThrownBy(() -> SqliteLocalStore.open(file, Fixtures.randomKey()))
        .isInstanceOf(IllegalStateException.class).hasMessageContaining("plaintext");
    assertThat(SqliteLocalStore.saltOf(file)).isEmpty();
    Path missing = dir.resolve("missing.db");
    assertThat(SqliteLocalStore.saltOf(missing)).isEmpty();
    assertThat(missing).doesNotExist();
  }

  @Test
  void sealedValuesSwappedBetweenRowsDoNotOpen() throws Exception {
    Path file = dir.resolve("device.db");
    AtRestCipher key = Fixtures.randomKey();
    try (SqliteLocalStore store = SqliteLocalStore.open(file, key)) {
      writePatients(store);
      store.transaction(tx -> {
        tx.putRecord(new LocalRecord("appointments", id(9), 0, null, json("{\"patientName\":\"Untouched\"}"), true, T0));
        tx.putSetting("a", "1");
        tx.putSetting("b", "2");
        return null;
      });
    }
    List<String> mutationIds = new ArrayList<>();
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file)) {
      swap(c, "records", "data", "record_id", id(1).toString(), id(2).toString());
      swapColumns(c, id(3).toString());
      try (ResultSet rs = c.createStatement().executeQuery("SELECT mutation_id FROM outbox ORDER BY device_seq")) {
        while (rs.next()) {
          mutationIds.add(rs.getString(1));
        }
      }
      swap(c, "outbox", "mutation", "mutation_id", mutationIds.get(0), mutationIds.get(1));
      swap(c, "outbox", "result", "mutation_id", mutationIds.get(1), mutationIds.get(2));
      swap(c, "settings", "value", "key", "a", "b");
    }
    try (SqliteLocalStore store = SqliteLocalStore.open(file, key)) {
      for (int i = 1; i <= 3; i++) {
        UUID recordId = id(i);
        assertThatThrownBy(() -> store.transaction(tx -> tx.record("appointments", recordId))).isInstanceOf(WrongKeyException.class);
      }
      assertThatThrownBy(() -> store.transaction(tx -> tx.query(RecordQuery.all("appointments")))).isInstanceOf(WrongKeyException.class);
      assertThatThrownBy(() -> store.transaction(tx -> tx.dirtyRecords())).isInstanceOf(WrongKeyException.class);
      for (String m : mutationIds) {
        assertThatThrownBy(() -> store.transaction(tx -> tx.entry(UUID.fromString(m)))).isInstanceOf(WrongKeyException.class);
      }
      assertThatThrownBy(() -> store.transaction(tx -> tx.setting("a"))).isInstanceOf(WrongKeyException.class);
      assertThatThrownBy(() -> store.transaction(tx -> tx.setting("b"))).isInstanceOf(WrongKeyException.class);
      // Cells nobody touched still open.
      LocalRecord untouched = store.transaction(tx -> tx.record("appointments", id(9))).orElseThrow();
      assertThat(untouched.data().get("patientName").asText()).isEqualTo("Untouched");
      Optional<String> profile = store.transaction(tx -> tx.setting("device.profile"));
      assertThat(profile).isPresent();
    }
  }

  /** Swaps the {@code column} values of two rows, by direct SQL. */
  static void swap(Connection c, String table, String column, String keyColumn, String k1, String k2) throws SQLException {
    byte[] v1 = value(c, table, column, keyColumn, k1);
    byte[] v2 = value(c, table, column, keyColumn, k2);
    assertThat(v1).isNotNull().isNotEqualTo(v2);
    set(c, table, column, keyColumn, k1, v2);
    set(c, table, column, keyColumn, k2, v1);
  }

  /** Swaps server_data and data within one record's row. */
  static void swapColumns(Connection c, String recordId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("UPDATE records SET data = server_data, server_data = data WHERE record_id = ?")) {
      ps.setString(1, recordId);
      assertThat(ps.executeUpdate()).isEqualTo(1);
    }
  }

  static byte[] value(Connection c, String table, String column, String keyColumn, String key) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("SELECT " + column + " FROM " + table + " WHERE " + keyColumn + " = ?")) {
      ps.setString(1, key);
      try (ResultSet rs = ps.executeQuery()) {
        assertThat(rs.next()).isTrue();
        return rs.getBytes(1);
      }
    }
  }

  static void set(Connection c, String table, String column, String keyColumn, String key, byte[] v) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("UPDATE " + table + " SET " + column + " = ? WHERE " + keyColumn + " = ?")) {
      ps.setBytes(1, v);
      ps.setString(2, key);
      assertThat(ps.executeUpdate()).isEqualTo(1);
    }
  }
}
