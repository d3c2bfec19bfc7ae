package org.civicsync.client.store.sqlite;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.LocalTx;
import org.civicsync.client.store.RecordQuery;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.json.Json;
import org.sqlite.SQLiteConfig;

/**
 * A {@link LocalStore} in one SQLite file, optionally encrypted at rest.
 *
 * <p><b>Durability and concurrency.</b> The file is in WAL mode with {@code synchronous=FULL}: a
 * transaction that returned has been fsynced and survives the process (or the device) dying right
 * after. One connection serves every transaction, under a lock: transactions run one at a time,
 * each {@code BEGIN IMMEDIATE … COMMIT}, rolled back when the work throws (the exception is
 * rethrown as it was). Another process opening the same file waits up to {@link #BUSY_TIMEOUT_MS}
 * for the write lock. Transactions do not nest: calling {@link #transaction} from inside a
 * transaction's work throws {@link IllegalStateException}, as does using a {@link LocalTx} after
 * its transaction ended.
 *
 * <p><b>Encryption at rest.</b> Opened with an {@link AtRestCipher} (or a passphrase), every value
 * that can hold personal data is stored sealed with AES-256-GCM: the record's {@code server_data}
 * and {@code data}, the outbox entry's {@code mutation} and {@code result}, and every setting's
 * value. Each is bound to its cell by the associated data {@code records/<column>/<collection>/<recordId>},
 * {@code outbox/<column>/<mutationId>} or {@code settings/<key>}, so a sealed value moved to another
 * row or column does not open. Keys and bookkeeping stay clear so they can be indexed: collection
 * names, record and mutation ids, server versions, deviceSeq, outbox state and attempts, the dirty
 * flag, timestamps, setting keys, and whether a value is absent (a deleted record). A file is
 * encrypted or not from its creation, marked by the row of its {@code crypto} table: the KDF, the
 * PBKDF2 salt and iterations for a passphrase, and a sealed check value, so a wrong key or
 * passphrase fails at {@code open} with {@link AtRestCipher.WrongKeyException}.
 *
 * <p><b>Queries</b> decrypt (or parse) the live records of the collection and filter, order and
 * page them in memory, with exactly the semantics of {@code InMemoryLocalStore}: meant for the
 * thousands of records a device holds, not millions. Record data round-trips through the wire JSON
 * mapper ({@link Json#mapper()}), so numbers come back as the node types parsing gives (an {@code
 * int}-sized integer as an {@code IntNode}, a fraction as a {@code DoubleNode}).
 */
public final class SqliteLocalStore implements LocalStore {
  /** How long a transaction waits for another process's write lock on the file. */
  public static final int BUSY_TIMEOUT_MS = 10_000;

  static final String KDF_PBKDF2 = "pbkdf2-hmac-sha256";
  static final String KDF_APP_KEY = "app-key";
  static final String CHECK_CONTEXT = "crypto/check";
  static final byte[] CHECK_PLAIN = "civicsync-check".getBytes(StandardCharsets.UTF_8);

  private static final ObjectMapper JSON = Json.mapper();

  private final Path file;
  private final Connection connection;
  /** Prepared statements by their SQL, in order of use (see {@link #cached}). */
  private final Map<String, PreparedStatement> statements = new java.util.LinkedHashMap<>(64, 0.75f, true) {
    @Override
    protected boolean removeEldestEntry(Map.Entry<String, PreparedStatement> eldest) {
      if (size() <= 64) {
        return false;
      }
      try {
        eldest.getValue().close();
      } catch (SQLException ignored) {
        // Closing a statement we no longer use; the connection stays good.
      }
      return true;
    }
  };
  private final Codec codec;
  private final ReentrantLock lock = new ReentrantLock();
  private boolean closed;

  private SqliteLocalStore(Path file, Connection connection, Codec codec) {
    this.file = file;
    this.connection = connection;
    this.codec = codec;
  }

  // ------------------------------------------------------------------ opening

  /**
   * Opens (creating it if needed) a plaintext store.
   *
   * @throws IllegalStateException when the file is encrypted at rest, or has a newer schema
   */
  public static SqliteLocalStore open(Path file) {
    return open(file, null, null);
  }

  /**
   * Opens (creating it if needed) a store encrypted under {@code cipher}: a key the app holds, or
   * one it derived itself with {@link AtRestCipher#fromPassphrase} and this file's {@link #saltOf
   * salt}.
   *
   * @throws AtRestCipher.WrongKeyException when the file is encrypted under another key
   * @throws IllegalStateException when the file exists and is not encrypted
   */
  public static SqliteLocalStore open(Path file, AtRestCipher cipher) {
    return open(file, Objects.requireNonNull(cipher, "cipher"), null);
  }

  /**
   * Opens (creating it if needed) a store encrypted under a key derived from {@code passphrase}
   * with PBKDF2-HMAC-SHA256 ({@link AtRestCipher#PBKDF2_ITERATIONS} iterations, 256 bits) and a
   * random 16-byte salt made when the file is created and kept in it. Deriving the key takes a
   * moment by design (of the order of a second on a phone).
   *
   * @throws AtRestCipher.WrongKeyException when the passphrase is not the file's
   * @throws IllegalStateException when the file exists and is not encrypted, or is encrypted
   *     under an app key rather than a passphrase
   */
  public static SqliteLocalStore openWithPassphrase(Path file, char[] passphrase) {
    return open(file, null, Objects.requireNonNull(passphrase, "passphrase"));
  }

  /**
   * The PBKDF2 salt of an existing file encrypted under a passphrase (for an app that derives and
   * caches the key itself); empty when the file does not exist, is not encrypted, or is encrypted
   * under an app key. Does not create or migrate the file.
   */
  public static Optional<byte[]> saltOf(Path file) {
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    try (Connection c = connect(file)) {
      try (Statement st = c.createStatement();
          ResultSet t = st.executeQuery("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'crypto'")) {
        if (!t.next()) {
          return Optional.empty();
        }
      }
      try (Statement st = c.createStatement();
          ResultSet rs = st.executeQuery("SELECT kdf, salt FROM crypto WHERE id = 1")) {
        if (rs.next() && KDF_PBKDF2.equals(rs.getString(1))) {
          return Optional.ofNullable(rs.getBytes(2));
        }
        return Optional.empty();
      }
    } catch (SQLException e) {
      throw new SqliteStoreException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /** The file this store keeps its data in. */
  public Path file() {
    return file;
  }

  /** Whether the file is encrypted at rest. */
  public boolean encrypted() {
    return codec.encrypted();
  }

  private static SqliteLocalStore open(Path file, AtRestCipher key, char[] passphrase) {
    Objects.requireNonNull(file, "file");
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the directory of " + file, e);
    }
    Connection c;
    try {
      c = connect(file);
    } catch (SQLException e) {
      throw new SqliteStoreException("cannot open " + file + ": " + e.getMessage(), e);
    }
    try {
      AtRestCipher cipher;
      execute(c, "BEGIN IMMEDIATE");
      try {
        int before = Schema.migrate(c);
        cipher = keying(c, file, before == 0, key, passphrase);
        execute(c, "COMMIT");
      } catch (SQLException | RuntimeException | Error e) {
        rollback(c, e);
        throw e;
      }
      return new SqliteLocalStore(file, c, new Codec(cipher));
    } catch (SQLException e) {
      closeAfter(c, e);
      throw new SqliteStoreException("cannot open " + file + ": " + e.getMessage(), e);
    } catch (RuntimeException | Error e) {
      closeAfter(c, e);
      throw e;
    }
  }

  private static void closeAfter(Connection c, Throwable cause) {
    try {
      c.close();
    } catch (SQLException suppressed) {
      cause.addSuppressed(suppressed);
    }
  }

  private static Connection connect(Path file) throws SQLException {
    SQLiteConfig config = new SQLiteConfig();
    config.setJournalMode(SQLiteConfig.JournalMode.WAL);
    config.setSynchronous(SQLiteConfig.SynchronousMode.FULL);
    config.setBusyTimeout(BUSY_TIMEOUT_MS);
    // Freed pages are zeroed: nothing deleted lingers in the file.
    config.setPragma(SQLiteConfig.Pragma.SECURE_DELETE, "true");
    return DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath(), config.toProperties());
  }

  /**
   * Checks the file's encryption marker against what the caller brought, writing it when the file
   * is new, and returns the cipher to use ({@code null}: plaintext).
   */
  private static AtRestCipher keying(Connection c, Path file, boolean fresh, AtRestCipher key, char[] passphrase) throws SQLException {
    String kdf = null;
    byte[] salt = null;
    Integer iterations = null;
    byte[] check = null;
    try (Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SELECT kdf, salt, iterations, check_value FROM crypto WHERE id = 1")) {
      if (rs.next()) {
        kdf = rs.getString(1);
        salt = rs.getBytes(2);
        int it = rs.getInt(3);
        iterations = rs.wasNull() ? null : it;
        check = rs.getBytes(4);
      }
    }
    if (kdf == null) {
      if (key == null && passphrase == null) {
        return null;
      }
      if (!fresh) {
        throw new IllegalStateException(file + " is a plaintext local database: open it without a key or passphrase "
            + "(an existing file cannot be encrypted in place)");
      }
      AtRestCipher cipher;
      if (key != null) {
        cipher = key;
      } else {
        salt = AtRestCipher.newSalt();
        iterations = AtRestCipher.PBKDF2_ITERATIONS;
        cipher = AtRestCipher.fromPassphrase(passphrase, salt);
      }
      try (PreparedStatement ps = c.prepareStatement(
          "INSERT INTO crypto (id, kdf, salt, iterations, check_value, created_at) VALUES (1, ?, ?, ?, ?, ?)")) {
        ps.setString(1, key != null ? KDF_APP_KEY : KDF_PBKDF2);
        ps.setBytes(2, salt);
        if (iterations == null) {
          ps.setNull(3, java.sql.Types.INTEGER);
        } else {
          ps.setInt(3, iterations);
        }
        ps.setBytes(4, cipher.seal(CHECK_PLAIN, CHECK_CONTEXT));
        ps.setString(5, Instant.now().toString());
        ps.executeUpdate();
      }
      return cipher;
    }
    if (key == null && passphrase == null) {
      throw new IllegalStateException(file + " is encrypted at rest: open it with its key or passphrase");
    }
    AtRestCipher cipher;
    if (key != null) {
      cipher = key;
    } else if (!KDF_PBKDF2.equals(kdf) || salt == null) {
      throw new IllegalStateException(file + " is encrypted under an app key, not a passphrase: open it with that key");
    } else if (iterations == null || iterations != AtRestCipher.PBKDF2_ITERATIONS) {
      throw new IllegalStateException(file + " uses PBKDF2 with " + iterations + " iterations; this client derives keys with "
          + AtRestCipher.PBKDF2_ITERATIONS);
    } else {
      cipher = AtRestCipher.fromPassphrase(passphrase, salt);
    }
    if (!Arrays.equals(cipher.open(check, CHECK_CONTEXT), CHECK_PLAIN)) {
      throw new AtRestCipher.WrongKeyException("the check value of " + file + " is not the expected one");
    }
    return cipher;
  }

  // ------------------------------------------------------------------ transactions

  @Override
  public <T> T transaction(Function<LocalTx, T> work) {
    Objects.requireNonNull(work, "work");
    if (lock.isHeldByCurrentThread()) {
      throw new IllegalStateException("transactions do not nest: use the LocalTx you were given");
    }
    lock.lock();
    try {
      if (closed) {
        throw new IllegalStateException("the local store is closed");
      }
      try {
        execute(connection, "BEGIN IMMEDIATE");
      } catch (SQLException e) {
        throw new SqliteStoreException("cannot begin a transaction on " + file + ": " + e.getMessage(), e);
      }
      Tx tx = new Tx();
      T out;
      try {
        out = work.apply(tx);
      } catch (RuntimeException | Error e) {
        tx.open = false;
        rollback(connection, e);
        throw e;
      }
      tx.open = false;
      try {
        execute(connection, "COMMIT");
      } catch (SQLException e) {
        rollback(connection, e);
        throw new SqliteStoreException("commit failed on " + file + ": " + e.getMessage(), e);
      }
      return out;
    } finally {
      lock.unlock();
    }
  }

  /** Closes the connection; waits for a running transaction. Idempotent. */
  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      for (PreparedStatement ps : statements.values()) {
        ps.close();
      }
      statements.clear();
      connection.close();
    } catch (SQLException e) {
      throw new SqliteStoreException("cannot close " + file + ": " + e.getMessage(), e);
    } finally {
      lock.unlock();
    }
  }

  /**
   * The connection's prepared statement for {@code sql}, parameters cleared: a device store runs
   * the same few statements hundreds of times per push answered, and preparing one costs SQLite
   * more than running it (about a fifth of a drain's device time went to preparing). Only under
   * the store's lock; kept until the store closes, the least recently used beyond 64 closed.
   */
  private PreparedStatement cached(String sql) throws SQLException {
    PreparedStatement ps = statements.get(sql);
    if (ps == null) {
      ps = connection.prepareStatement(sql);
      statements.put(sql, ps);
    } else {
      ps.clearParameters();
    }
    return ps;
  }

  private static void execute(Connection c, String sql) throws SQLException {
    try (Statement st = c.createStatement()) {
      st.execute(sql);
    }
  }

  private static void rollback(Connection c, Throwable cause) {
    try {
      execute(c, "ROLLBACK");
    } catch (SQLException suppressed) {
      // No transaction is open when SQLite already rolled it back (e.g. after an I/O error).
      cause.addSuppressed(suppressed);
    }
  }

  /** The value of a PRAGMA on this store's connection (for tests and diagnostics). */
  String pragma(String name) {
    if (!name.matches("[a-z_]+")) {
      throw new IllegalArgumentException(name);
    }
    lock.lock();
    try (Statement st = connection.createStatement(); ResultSet rs = st.executeQuery("PRAGMA " + name)) {
      return rs.next() ? rs.getString(1) : null;
    } catch (SQLException e) {
      throw failure("cannot read PRAGMA " + name, e);
    } finally {
      lock.unlock();
    }
  }

  // ------------------------------------------------------------------ JSON

  private static byte[] toJson(Object value) {
    if (value == null) {
      return null;
    }
    try {
      return JSON.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static <T> T fromJson(byte[] json, Class<T> type) {
    if (json == null) {
      return null;
    }
    try {
      return JSON.readValue(json, type);
    } catch (IOException e) {
      throw new UncheckedIOException("a stored value is not valid JSON for " + type.getSimpleName(), e);
    }
  }

  private static SqliteStoreException failure(String what, SQLException e) {
    return new SqliteStoreException(what + ": " + e.getMessage(), e);
  }

  // ------------------------------------------------------------------ the transaction

  private final class Tx implements LocalTx {
    volatile boolean open = true;

    private void check() {
      if (!open) {
        throw new IllegalStateException("this LocalTx's transaction has ended");
      }
      if (!lock.isHeldByCurrentThread()) {
        throw new IllegalStateException("a LocalTx is used only by the thread running its transaction");
      }
    }

    // -------------------------------------------------------------- records

    private static final String RECORD_COLUMNS = "collection, record_id, server_version, server_data, data, dirty, updated_at";

    /** A row whose data is opened; server_data is opened only when asked for (queries skip most rows). */
    private final class RecordRow {
      final String collection;
      final String recordId;
      final long serverVersion;
      final ObjectNode data;
      final boolean dirty;
      final Instant updatedAt;
      byte[] serverDataPlain;
      boolean serverDataOpened;

      RecordRow(ResultSet rs, boolean openServerData) throws SQLException {
        collection = rs.getString("collection");
        recordId = rs.getString("record_id");
        serverVersion = rs.getLong("server_version");
        data = fromJson(codec.read(rs, "data", Codec.recordContext("data", collection, recordId)), ObjectNode.class);
        dirty = rs.getInt("dirty") != 0;
        updatedAt = Instant.parse(rs.getString("updated_at"));
        if (openServerData) {
          serverDataPlain = codec.read(rs, "server_data", Codec.recordContext("server_data", collection, recordId));
          serverDataOpened = true;
        }
      }

      LocalRecord toRecord(ObjectNode serverData) {
        return new LocalRecord(collection, UUID.fromString(recordId), serverVersion, serverData, data, dirty, updatedAt);
      }
    }

    private LocalRecord full(RecordRow row) {
      return row.toRecord(fromJson(row.serverDataPlain, ObjectNode.class));
    }

    @Override
    public Optional<LocalRecord> record(String collection, UUID recordId) {
      check();
      try {
        PreparedStatement ps = cached(
          "SELECT " + RECORD_COLUMNS + " FROM records WHERE collection = ? AND record_id = ?");
        ps.setString(1, collection);
        ps.setString(2, recordId.toString());
        try (ResultSet rs = ps.executeQuery()) {
          return rs.next() ? Optional.of(full(new RecordRow(rs, true))) : Optional.empty();
        }
      } catch (SQLException e) {
        throw failure("cannot read a record", e);
      }
    }

    @Override
    public List<LocalRecord> query(RecordQuery q) {
      check();
      // Rows are opened with data only; server_data is opened for the page returned. The SQL
      // keeps what the query would keep anyway (the collection's live records), and the query's
      // own filter, order and paging run in Java with the reference semantics, on encrypted and
      // plaintext files alike.
      List<RecordRow> rows = new ArrayList<>();
      try {
        PreparedStatement ps = cached(
          "SELECT " + RECORD_COLUMNS + " FROM records WHERE collection = ? AND data IS NOT NULL");
        ps.setString(1, q.collection());
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            rows.add(new RecordRow(rs, false));
          }
        }
      } catch (SQLException e) {
        throw failure("cannot query records", e);
      }
      Map<LocalRecord, RecordRow> byPreview = new java.util.IdentityHashMap<>();
      List<LocalRecord> previews = new ArrayList<>(rows.size());
      for (RecordRow row : rows) {
        LocalRecord preview = row.toRecord(null);
        byPreview.put(preview, row);
        previews.add(preview);
      }
      List<LocalRecord> page = q.select(previews.stream());
      List<LocalRecord> out = new ArrayList<>(page.size());
      for (LocalRecord preview : page) {
        out.add(withServerData(byPreview.get(preview)));
      }
      return out;
    }

    private LocalRecord withServerData(RecordRow row) {
      if (row.serverDataOpened) {
        return full(row);
      }
      try {
        PreparedStatement ps = cached(
          "SELECT server_data FROM records WHERE collection = ? AND record_id = ?");
        ps.setString(1, row.collection);
        ps.setString(2, row.recordId);
        try (ResultSet rs = ps.executeQuery()) {
          byte[] plain = rs.next() ? codec.read(rs, "server_data", Codec.recordContext("server_data", row.collection, row.recordId)) : null;
          return row.toRecord(fromJson(plain, ObjectNode.class));
        }
      } catch (SQLException e) {
        throw failure("cannot read a record", e);
      }
    }

    @Override
    public List<LocalRecord> dirtyRecords() {
      return dirty("", List.of());
    }

    // One probe of the outbox's (collection, record_id, device_seq, state) index per dirty record,
    // answered from the index; only the records that qualify are read and decoded. (The default
    // read and decoded every dirty record and its entries: a 10,000-change outbox took 18 s of the
    // device's time to drain.)
    @Override
    public List<LocalRecord> dirtyRecordsWithoutEntriesIn(Collection<EntryState> states) {
      List<String> wire = wireNames(states);
      return wire.isEmpty() ? dirtyRecords() : dirty(" AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.collection = r.collection"
          + " AND o.record_id = r.record_id AND o.state IN (" + marks(wire.size()) + "))", wire);
    }

    /** Whole dirty records matching a further condition on {@code r}, bound to {@code params}. */
    private List<LocalRecord> dirty(String condition, List<String> params) {
      check();
      List<LocalRecord> out = new ArrayList<>();
      try {
        PreparedStatement ps = cached(
          "SELECT " + RECORD_COLUMNS + " FROM records r WHERE dirty = 1" + condition + " ORDER BY collection, record_id");
        for (int i = 0; i < params.size(); i++) {
          ps.setString(i + 1, params.get(i));
        }
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.add(full(new RecordRow(rs, true)));
          }
        }
      } catch (SQLException e) {
        throw failure("cannot read dirty records", e);
      }
      return out;
    }

    @Override
    public void putRecord(LocalRecord r) {
      check();
      String id = r.recordId().toString();
      try {
        PreparedStatement ps = cached(
          "INSERT INTO records (" + RECORD_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?) "
              + "ON CONFLICT (collection, record_id) DO UPDATE SET server_version = excluded.server_version, "
              + "server_data = excluded.server_data, data = excluded.data, dirty = excluded.dirty, updated_at = excluded.updated_at");
        ps.setString(1, r.collection());
        ps.setString(2, id);
        ps.setLong(3, r.serverVersion());
        codec.bind(ps, 4, toJson(r.serverData()), Codec.recordContext("server_data", r.collection(), id));
        codec.bind(ps, 5, toJson(r.data()), Codec.recordContext("data", r.collection(), id));
        ps.setInt(6, r.dirty() ? 1 : 0);
        ps.setString(7, r.updatedAt().toString());
        ps.executeUpdate();
      } catch (SQLException e) {
        throw failure("cannot write a record", e);
      }
    }

    @Override
    public void removeRecord(String collection, UUID recordId) {
      check();
      try {
        PreparedStatement ps = cached("DELETE FROM records WHERE collection = ? AND record_id = ?");
        ps.setString(1, collection);
        ps.setString(2, recordId.toString());
        ps.executeUpdate();
      } catch (SQLException e) {
        throw failure("cannot remove a record", e);
      }
    }

    // -------------------------------------------------------------- outbox

    private static final String ENTRY_COLUMNS = "mutation_id, state, mutation, result, attempts, created_at, updated_at";

    /** The wire names of the given states, each once, in declaration order. */
    private static List<String> wireNames(Collection<EntryState> states) {
      List<String> out = new ArrayList<>();
      for (EntryState s : EntryState.values()) {
        if (states.contains(s)) {
          out.add(s.wire());
        }
      }
      return out;
    }

    private static String marks(int n) {
      return String.join(", ", java.util.Collections.nCopies(n, "?"));
    }

    private OutboxEntry entryOf(ResultSet rs) throws SQLException {
      String id = rs.getString("mutation_id");
      Mutation mutation = fromJson(codec.read(rs, "mutation", Codec.outboxContext("mutation", id)), Mutation.class);
      MutationResult result = fromJson(codec.read(rs, "result", Codec.outboxContext("result", id)), MutationResult.class);
      EntryState state = EntryState.valueOf(rs.getString("state").toUpperCase(Locale.ROOT));
      return new OutboxEntry(mutation, state, Optional.ofNullable(result), rs.getInt("attempts"),
          Instant.parse(rs.getString("created_at")), Instant.parse(rs.getString("updated_at")));
    }

    private List<OutboxEntry> entries(PreparedStatement ps) throws SQLException {
      List<OutboxEntry> out = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(entryOf(rs));
        }
      }
      return out;
    }

    @Override
    public void putEntry(OutboxEntry e) {
      check();
      Mutation m = e.mutation();
      String id = m.mutationId().toString();
      // An upsert on the mutation id, not INSERT OR REPLACE: another entry with the same deviceSeq
      // is a caller's error and fails on the UNIQUE constraint instead of being silently dropped.
      try {
        PreparedStatement ps = cached(
          "INSERT INTO outbox (mutation_id, device_seq, collection, record_id, state, mutation, result, attempts, created_at, updated_at) "
              + "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (mutation_id) DO UPDATE SET device_seq = excluded.device_seq, "
              + "collection = excluded.collection, record_id = excluded.record_id, state = excluded.state, mutation = excluded.mutation, "
              + "result = excluded.result, attempts = excluded.attempts, created_at = excluded.created_at, updated_at = excluded.updated_at");
        ps.setString(1, id);
        ps.setLong(2, m.deviceSeq());
        ps.setString(3, m.collection());
        ps.setString(4, m.recordId().toString());
        ps.setString(5, e.state().wire());
        codec.bind(ps, 6, toJson(m), Codec.outboxContext("mutation", id));
        codec.bind(ps, 7, toJson(e.result().orElse(null)), Codec.outboxContext("result", id));
        ps.setInt(8, e.attempts());
        ps.setString(9, e.createdAt().toString());
        ps.setString(10, e.updatedAt().toString());
        ps.executeUpdate();
      } catch (SQLException ex) {
        throw failure("cannot write outbox entry " + id + " (deviceSeq " + m.deviceSeq() + ")", ex);
      }
    }

    @Override
    public Optional<OutboxEntry> entry(UUID mutationId) {
      check();
      try {
        PreparedStatement ps = cached("SELECT " + ENTRY_COLUMNS + " FROM outbox WHERE mutation_id = ?");
        ps.setString(1, mutationId.toString());
        return entries(ps).stream().findFirst();
      } catch (SQLException e) {
        throw failure("cannot read an outbox entry", e);
      }
    }

    @Override
    public List<OutboxEntry> entries(Collection<EntryState> states, int limit) {
      check();
      if (limit < 0) {
        throw new IllegalArgumentException(Integer.toString(limit));
      }
      List<String> wire = wireNames(states);
      if (wire.isEmpty() || limit == 0) {
        return new ArrayList<>();
      }
      try {
        PreparedStatement ps = cached(
          "SELECT " + ENTRY_COLUMNS + " FROM outbox WHERE state IN (" + marks(wire.size()) + ") ORDER BY device_seq LIMIT ?");
        int i = 1;
        for (String s : wire) {
          ps.setString(i++, s);
        }
        ps.setInt(i, limit);
        return entries(ps);
      } catch (SQLException e) {
        throw failure("cannot read the outbox", e);
      }
    }

    @Override
    public List<OutboxEntry> entriesOf(String collection, UUID recordId) {
      check();
      try {
        PreparedStatement ps = cached(
          "SELECT " + ENTRY_COLUMNS + " FROM outbox WHERE collection = ? AND record_id = ? ORDER BY device_seq");
        ps.setString(1, collection);
        ps.setString(2, recordId.toString());
        return entries(ps);
      } catch (SQLException e) {
        throw failure("cannot read the outbox", e);
      }
    }

    @Override
    public Map<EntryState, Long> countByState() {
      check();
      Map<EntryState, Long> out = new EnumMap<>(EntryState.class);
      try (ResultSet rs = cached("SELECT state, COUNT(*) FROM outbox GROUP BY state").executeQuery()) {
        while (rs.next()) {
          out.put(EntryState.valueOf(rs.getString(1).toUpperCase(Locale.ROOT)), rs.getLong(2));
        }
      } catch (SQLException e) {
        throw failure("cannot count the outbox", e);
      }
      return out;
    }

    @Override
    public void removeEntry(UUID mutationId) {
      check();
      try {
        PreparedStatement ps = cached("DELETE FROM outbox WHERE mutation_id = ?");
        ps.setString(1, mutationId.toString());
        ps.executeUpdate();
      } catch (SQLException e) {
        throw failure("cannot remove an outbox entry", e);
      }
    }

    // -------------------------------------------------------------- settings

    @Override
    public Optional<String> setting(String key) {
      check();
      try {
        PreparedStatement ps = cached("SELECT value FROM settings WHERE key = ?");
        ps.setString(1, key);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            return Optional.empty();
          }
          byte[] plain = codec.read(rs, "value", Codec.settingContext(key));
          return Optional.of(new String(plain, StandardCharsets.UTF_8));
        }
      } catch (SQLException e) {
        throw failure("cannot read a setting", e);
      }
    }

    @Override
    public void putSetting(String key, String value) {
      check();
      Objects.requireNonNull(key, "key");
      Objects.requireNonNull(value, "value");
      try {
        PreparedStatement ps = cached(
          "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
        ps.setString(1, key);
        codec.bind(ps, 2, value.getBytes(StandardCharsets.UTF_8), Codec.settingContext(key));
        ps.executeUpdate();
      } catch (SQLException e) {
        throw failure("cannot write a setting", e);
      }
    }
  }
}
