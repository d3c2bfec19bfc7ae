package org.civicsync.server.store.sqlite;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Function;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.store.FeedBounds;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.MovedRecord;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PulledRecord;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.ReadTx;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.RowWork;
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.store.WriteTx;
import org.flywaydb.core.Flyway;
import org.sqlite.SQLiteConfig;

/** A {@link ServerStore} in one SQLite file. */
public final class SqliteServerStore implements ServerStore {
  /** How many ids go into one {@code IN (...)} list; SQLite allows 32766 host parameters. */
  private static final int CHUNK = 500;

  private final HikariDataSource pool;
  // SQLite admits one writer; queueing writers here keeps them fair and free of SQLITE_BUSY.
  private final ReentrantLock writer = new ReentrantLock(true);

  private SqliteServerStore(HikariDataSource pool) {
    this.pool = pool;
  }

  /** Opens (creating if needed) and migrates the database at {@code file}. */
  public static SqliteServerStore open(Path file) {
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
    } catch (java.io.IOException e) {
      throw new StoreUnavailableException("cannot create directory for " + file, e);
    }
    SQLiteConfig sqlite = new SQLiteConfig();
    sqlite.setJournalMode(SQLiteConfig.JournalMode.WAL);
    sqlite.setSynchronous(SQLiteConfig.SynchronousMode.FULL);
    sqlite.setBusyTimeout(30_000);
    sqlite.enforceForeignKeys(true);
    HikariConfig hc = new HikariConfig();
    hc.setJdbcUrl("jdbc:sqlite:" + file.toAbsolutePath());
    hc.setDataSourceProperties(sqlite.toProperties());
    hc.setMaximumPoolSize(4);
    hc.setPoolName("civicsync-sqlite");
    HikariDataSource ds = new HikariDataSource(hc);
    try {
      Flyway.configure().dataSource(ds).locations("classpath:db/migration/sqlite").load().migrate();
    } catch (RuntimeException e) {
      ds.close();
      throw e;
    }
    return new SqliteServerStore(ds);
  }

  // ------------------------------------------------------------------ tenancy

  @Override
  public boolean createTenant(TenantRow tenant) {
    return inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING")) {
        ps.setString(1, tenant.tenantId());
        ps.setString(2, tenant.createdAt().toString());
        if (ps.executeUpdate() == 0) {
          return false;
        }
      }
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO tenant_heads (tenant_id, head) VALUES (?, 0)")) {
        ps.setString(1, tenant.tenantId());
        ps.executeUpdate();
      }
      return true;
    });
  }

  @Override
  public Optional<TenantRow> findTenant(String tenantId) {
    return query("SELECT tenant_id, created_at FROM tenants WHERE tenant_id = ?", ps -> ps.setString(1, tenantId),
        rs -> new TenantRow(rs.getString(1), IsoInstants.parse(rs.getString(2)))).stream().findFirst();
  }

  @Override
  public List<String> tenantIds() {
    return query("SELECT tenant_id FROM tenants ORDER BY tenant_id", ps -> { }, rs -> rs.getString(1));
  }

  @Override
  public Optional<EnrollmentCodeRow> findEnrollmentCode(String codeHash) {
    return query("SELECT " + CODE_COLUMNS + " FROM enrollment_codes WHERE code_hash = ?", ps -> ps.setString(1, codeHash),
        SqliteServerStore::enrollmentCode).stream().findFirst();
  }

  @Override
  public Optional<DeviceRow> findDeviceByTokenHash(String tokenHash) {
    return query("SELECT " + DEVICE_COLUMNS + " FROM devices WHERE token_hash = ?", ps -> ps.setString(1, tokenHash),
        SqliteServerStore::device).stream().findFirst();
  }

  @Override
  public Optional<DeviceRow> findDevice(UUID deviceId) {
    return query("SELECT " + DEVICE_COLUMNS + " FROM devices WHERE device_id = ?", ps -> ps.setString(1, deviceId.toString()),
        SqliteServerStore::device).stream().findFirst();
  }

  @Override
  public List<DeviceRow> devices(String tenantId) {
    // enrolled_at is ISO text of varying precision, which does not sort as time: order as instants.
    List<DeviceRow> out = new ArrayList<>(query("SELECT " + DEVICE_COLUMNS + " FROM devices WHERE tenant_id = ?",
        ps -> ps.setString(1, tenantId), SqliteServerStore::device));
    out.sort(Comparator.comparing(DeviceRow::enrolledAt).thenComparing(d -> d.deviceId().toString()));
    return out;
  }

  @Override
  public Optional<UserRow> findUser(String tenantId, String userId) {
    return query("SELECT " + USER_COLUMNS + " FROM users WHERE tenant_id = ? AND user_id = ?", ps -> {
      ps.setString(1, tenantId);
      ps.setString(2, userId);
    }, SqliteServerStore::user).stream().findFirst();
  }

  @Override
  public List<UserRow> users(String tenantId) {
    List<UserRow> out = new ArrayList<>(query("SELECT " + USER_COLUMNS + " FROM users WHERE tenant_id = ? ORDER BY user_id",
        ps -> ps.setString(1, tenantId), SqliteServerStore::user));
    out.sort(Comparator.comparing(UserRow::userId)); // Java string order, whatever the collation
    return out;
  }

  @Override
  public List<OrgUnitRow> orgUnits(String tenantId) {
    List<OrgUnitRow> out = new ArrayList<>(query("SELECT tenant_id, org_unit_id, parent, name, updated_at FROM org_units"
        + " WHERE tenant_id = ? ORDER BY org_unit_id", ps -> ps.setString(1, tenantId),
        rs -> new OrgUnitRow(rs.getString(1), rs.getString(2), Optional.ofNullable(rs.getString(3)), rs.getString(4),
            IsoInstants.parse(rs.getString(5)))));
    out.sort(Comparator.comparing(OrgUnitRow::orgUnitId));
    return out;
  }

  @Override
  public void insertChallenge(ChallengeRow ch) {
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO challenges (device_id, challenge, expires_at) VALUES (?,?,?)")) {
        ps.setString(1, ch.deviceId().toString());
        ps.setString(2, ch.challenge());
        ps.setString(3, ch.expiresAt().toString());
        ps.executeUpdate();
      }
      return null;
    });
  }

  @Override
  public Optional<ChallengeRow> takeChallenge(UUID deviceId, String challenge, Instant now) {
    // Under the writer lock in one IMMEDIATE transaction, so two takers cannot both see the row.
    // Expiry is compared as instants (ISO text of varying precision does not sort as time).
    return inWriteTransaction(c -> {
      List<ChallengeRow> rows = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT device_id, challenge, expires_at FROM challenges WHERE device_id = ?")) {
        ps.setString(1, deviceId.toString());
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            rows.add(new ChallengeRow(UUID.fromString(rs.getString(1)), rs.getString(2), IsoInstants.parse(rs.getString(3))));
          }
        }
      }
      Optional<ChallengeRow> found = rows.stream().filter(r -> r.challenge().equals(challenge)).findFirst();
      List<ChallengeRow> gone = rows.stream().filter(r -> r.challenge().equals(challenge) || !r.expiresAt().isAfter(now)).toList();
      if (!gone.isEmpty()) {
        try (PreparedStatement ps = c.prepareStatement("DELETE FROM challenges WHERE device_id = ? AND challenge = ?")) {
          for (ChallengeRow r : gone) {
            ps.setString(1, deviceId.toString());
            ps.setString(2, r.challenge());
            ps.addBatch();
          }
          ps.executeBatch();
        }
      }
      return found.filter(r -> r.expiresAt().isAfter(now));
    });
  }

  @Override
  public void putScopeSnapshot(String tenantId, String snapshotId, Set<String> keys) {
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement(
          "INSERT INTO scope_snapshots (tenant_id, snapshot_id, key_set) VALUES (?,?,?) ON CONFLICT DO NOTHING")) {
        ps.setString(1, tenantId);
        ps.setString(2, snapshotId);
        ps.setString(3, jsonArray(keys));
        ps.executeUpdate();
      }
      return null;
    });
  }

  @Override
  public Optional<Set<String>> scopeSnapshot(String tenantId, String snapshotId) {
    return query("SELECT key_set FROM scope_snapshots WHERE tenant_id = ? AND snapshot_id = ?", ps -> {
      ps.setString(1, tenantId);
      ps.setString(2, snapshotId);
    }, rs -> Set.copyOf(strings(rs.getString(1)))).stream().findFirst();
  }

  private static final String CODE_COLUMNS = "code_hash, tenant_id, label, created_at, expires_at, max_uses, uses, user_id";

  private static EnrollmentCodeRow enrollmentCode(ResultSet rs) throws SQLException {
    return new EnrollmentCodeRow(rs.getString(1), rs.getString(2), rs.getString(3), IsoInstants.parse(rs.getString(4)),
        IsoInstants.parse(rs.getString(5)), rs.getInt(6), rs.getInt(7), rs.getString(8));
  }

  private static final String DEVICE_COLUMNS = "device_id, tenant_id, name, public_key, token_hash, enrolled_at, last_push_at,"
      + " last_pull_at, kind, user_id, token_expires_at, revoked_at";

  private static DeviceRow device(ResultSet rs) throws SQLException {
    return new DeviceRow(UUID.fromString(rs.getString(1)), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
        IsoInstants.parse(rs.getString(6)), instant(rs.getString(7)), instant(rs.getString(8)), rs.getString(9), rs.getString(10),
        instant(rs.getString(11)), instant(rs.getString(12)));
  }

  private static final String USER_COLUMNS = "tenant_id, user_id, roles, org_units, created_at, updated_at";

  private static UserRow user(ResultSet rs) throws SQLException {
    return new UserRow(rs.getString(1), rs.getString(2), strings(rs.getString(3)), strings(rs.getString(4)),
        IsoInstants.parse(rs.getString(5)), IsoInstants.parse(rs.getString(6)));
  }

  @Override
  public void markPulled(String tenantId, UUID deviceId, Instant at) {
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement("UPDATE devices SET last_pull_at = ? WHERE tenant_id = ? AND device_id = ?")) {
        ps.setString(1, at.toString());
        ps.setString(2, tenantId);
        ps.setString(3, deviceId.toString());
        ps.executeUpdate();
      }
      return null;
    });
  }

  @Override
  public Optional<String> setting(String key) {
    return query("SELECT value FROM settings WHERE key = ?", ps -> ps.setString(1, key), rs -> rs.getString(1)).stream().findFirst();
  }

  @Override
  public void putSetting(String key, String value) {
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement(
          "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")) {
        ps.setString(1, key);
        ps.setString(2, value);
        ps.executeUpdate();
      }
      return null;
    });
  }

  // ------------------------------------------------------------------ sync

  private final org.civicsync.server.store.CommitListeners commitListeners = new org.civicsync.server.store.CommitListeners();

  @Override
  public <T> T write(String tenantId, Function<WriteTx, T> work) {
    Tx[] opened = new Tx[1];
    T result = inWriteTransaction(c -> {
      long head;
      AuditHead audit;
      // The counter and the audit head in the one statement that starts the tenant's write.
      long watermark;
      try (PreparedStatement ps = c.prepareStatement("SELECT head, audit_seq, audit_hash, watermark FROM tenant_heads WHERE tenant_id = ?")) {
        ps.setString(1, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            throw new IllegalArgumentException("no tenant " + tenantId);
          }
          head = rs.getLong(1);
          audit = new AuditHead(rs.getLong(2), rs.getString(3));
          watermark = rs.getLong(4);
        }
      }
      opened[0] = new Tx(c, tenantId, head, audit, watermark);
      return work.apply(opened[0]);
    });
    // Committed: one process owns the file, so the notice goes to this process's listeners only.
    if (opened[0] != null && opened[0].notice != null) {
      commitListeners.deliver(opened[0].notice.committedNow());
    }
    return result;
  }

  @Override
  public List<org.civicsync.server.store.OutboxEvent> unpublishedEvents(int limit) {
    // Insertion order is commit order here: one writer at a time.
    return query("SELECT tenant_id, seq, event_id, subject, payload, created_at, attempts FROM domain_events"
            + " WHERE published_at IS NULL ORDER BY rowid LIMIT ?", ps -> ps.setInt(1, limit),
        rs -> new org.civicsync.server.store.OutboxEvent(rs.getString(1), rs.getLong(2), UUID.fromString(rs.getString(3)), rs.getString(4),
            rs.getString(5), IsoInstants.parse(rs.getString(6)), rs.getInt(7)));
  }

  @Override
  public void markPublished(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, Instant at) {
    eachEvent(events, "UPDATE domain_events SET published_at = ? WHERE tenant_id = ? AND seq = ? AND published_at IS NULL", at.toString());
  }

  @Override
  public void markPublishFailed(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, String error) {
    eachEvent(events, "UPDATE domain_events SET attempts = attempts + 1, last_error = ? WHERE tenant_id = ? AND seq = ?", error);
  }

  private void eachEvent(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, String sql, String first) {
    if (events.isEmpty()) {
      return;
    }
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        for (org.civicsync.server.store.OutboxEvent e : events) {
          ps.setString(1, first);
          ps.setString(2, e.tenantId());
          ps.setLong(3, e.seq());
          ps.addBatch();
        }
        ps.executeBatch();
      }
      return null;
    });
  }

  @Override
  public Optional<PoolStats> poolStats() {
    return Optional.ofNullable(pool.getHikariPoolMXBean()).map(m -> new PoolStats(m.getActiveConnections(),
        m.getIdleConnections(), m.getTotalConnections(), pool.getMaximumPoolSize(), m.getThreadsAwaitingConnection()));
  }

  @Override
  public Waiting waiting() {
    return query("SELECT (SELECT count(*) FROM held_mutations), (SELECT count(*) FROM inbox_items WHERE status = 'open')", ps -> { },
        rs -> new Waiting(rs.getLong(1), rs.getLong(2))).get(0);
  }

  @Override
  public EventBacklog eventBacklog() {
    // The oldest by insertion order: ISO text of varying precision would not sort as time.
    return query("SELECT (SELECT count(*) FROM domain_events WHERE published_at IS NULL),"
            + " (SELECT created_at FROM domain_events WHERE published_at IS NULL ORDER BY rowid LIMIT 1)", ps -> { },
        rs -> new EventBacklog(rs.getLong(1), Optional.ofNullable(rs.getString(2)).map(Instant::parse))).get(0);
  }

  @Override
  public Optional<Leadership> tryLead(String role) {
    // One process owns this store: a role is this process's, held by one caller at a time.
    return roles.tryLead(role);
  }

  private final org.civicsync.server.store.LocalRoles roles = new org.civicsync.server.store.LocalRoles();

  @Override
  public AutoCloseable onCommit(java.util.function.Consumer<org.civicsync.server.store.CommitNotice> listener) {
    return commitListeners.add(listener);
  }

  @Override
  public long head(String tenantId) {
    return query("SELECT head FROM tenant_heads WHERE tenant_id = ?", ps -> ps.setString(1, tenantId), rs -> rs.getLong(1))
        .stream().findFirst().orElse(0L);
  }

  private static final String RECORD_COLUMNS = "collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key";
  /** A graveyard row read as the tombstone it was, in the layout of {@link #RECORD_COLUMNS}. */
  private static final String GRAVE_COLUMNS = "collection, record_id, version, 1, NULL, seq, updated_at, field_hlc, scope_key";

  @Override
  public PullPage pull(String tenantId, PullQuery q) {
    return inReadTransaction(c -> {
      long head = 0;
      try (PreparedStatement ps = c.prepareStatement("SELECT head FROM tenant_heads WHERE tenant_id = ?")) {
        ps.setString(1, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          if (rs.next()) {
            head = rs.getLong(1);
          }
        }
      }
      List<PulledRecord> rows = pullRecords(c, tenantId, q);
      List<MovedRecord> moves = q.moveFromKeys().isEmpty() ? List.of() : pullMoves(c, tenantId, q);
      boolean more = rows.size() > q.limit() || moves.size() > q.limit();
      return new PullPage(rows.subList(0, Math.min(rows.size(), q.limit())), moves.subList(0, Math.min(moves.size(), q.limit())),
          more, head);
    });
  }

  /** Up to limit + 1 projection rows of the query; key sets are bound as JSON arrays. */
  private static List<PulledRecord> pullRecords(Connection c, String tenantId, PullQuery q) throws SQLException {
    // The feed never sends field clocks: they are not read. The data is the text the store wrote
    // (compact JSON from the wire mapper), spliced into the page as it is.
    StringBuilder sql = new StringBuilder("SELECT collection, record_id, version, deleted, data, seq, updated_at, scope_key"
        + " FROM records WHERE tenant_id = ? AND seq > ?");
    List<String> sets = new ArrayList<>();
    if (!q.collections().isEmpty()) {
      sql.append(" AND collection IN (SELECT value FROM json_each(?))");
      sets.add(jsonArray(q.collections()));
    }
    if (q.visibleKeys().isPresent()) {
      sql.append(" AND (scope_key IN (SELECT value FROM json_each(?))").append(q.includeUnscoped() ? " OR scope_key IS NULL)" : ")");
      sets.add(jsonArray(q.visibleKeys().get()));
    }
    sql.append(" ORDER BY seq LIMIT ?");
    List<PulledRecord> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
      int i = 1;
      ps.setString(i++, tenantId);
      ps.setLong(i++, q.afterSeq());
      for (String set : sets) {
        ps.setString(i++, set);
      }
      ps.setLong(i, q.limit() + 1L);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          byte[] data = rs.getBytes(5); // a TEXT column's bytes: its UTF-8
          out.add(new PulledRecord(rs.getString(1), UUID.fromString(rs.getString(2)), rs.getLong(3), rs.getInt(4) != 0,
              data == null ? null : StoreJson.compact(data), rs.getLong(6), IsoInstants.parse(rs.getString(7)), rs.getString(8)));
        }
      }
    }
    return out;
  }

  /** Up to limit + 1 moves away from the query's keys, each with the record's scope key in the same snapshot. */
  private static List<MovedRecord> pullMoves(Connection c, String tenantId, PullQuery q) throws SQLException {
    StringBuilder sql = new StringBuilder("SELECT m.seq, m.collection, m.record_id, m.from_key, r.scope_key FROM scope_moves m"
        + " LEFT JOIN records r ON r.tenant_id = m.tenant_id AND r.collection = m.collection AND r.record_id = m.record_id"
        + " WHERE m.tenant_id = ? AND m.seq > ? AND m.from_key IN (SELECT value FROM json_each(?))");
    if (!q.collections().isEmpty()) {
      sql.append(" AND m.collection IN (SELECT value FROM json_each(?))");
    }
    // rowid: moves of one seq in the order they were recorded
    sql.append(" ORDER BY m.seq, m.rowid LIMIT ?");
    List<MovedRecord> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
      int i = 1;
      ps.setString(i++, tenantId);
      ps.setLong(i++, q.afterSeq());
      ps.setString(i++, jsonArray(q.moveFromKeys()));
      if (!q.collections().isEmpty()) {
        ps.setString(i++, jsonArray(q.collections()));
      }
      ps.setLong(i, q.limit() + 1L);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(new MovedRecord(new ScopeMove(rs.getLong(1), rs.getString(2), UUID.fromString(rs.getString(3)), rs.getString(4)),
              Optional.ofNullable(rs.getString(5))));
        }
      }
    }
    return out;
  }

  @Override
  public <T> T read(String tenantId, Function<ReadTx, T> work) {
    return inReadTransaction(c -> {
      AuditHead audit;
      // The first read fixes the snapshot every later read of this transaction sees.
      try (PreparedStatement ps = c.prepareStatement("SELECT audit_seq, audit_hash FROM tenant_heads WHERE tenant_id = ?")) {
        ps.setString(1, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          if (!rs.next()) {
            throw new IllegalArgumentException("no tenant " + tenantId);
          }
          audit = new AuditHead(rs.getLong(1), rs.getString(2));
        }
      }
      Reader reader = new Reader(c, tenantId, audit);
      try {
        return work.apply(reader);
      } finally {
        reader.open = false;
      }
    });
  }

  /** The read-only view of {@link #read}: every query runs in the one read transaction. */
  private static final class Reader implements ReadTx {
    private final Connection c;
    private final String tenant;
    private final AuditHead audit;
    private volatile boolean open = true;

    Reader(Connection c, String tenant, AuditHead audit) {
      this.c = c;
      this.tenant = tenant;
      this.audit = audit;
    }

    @Override
    public AuditHead auditHead() {
      check();
      return audit;
    }

    @Override
    public List<AuditEntry> audit(long afterSeq, int limit) {
      check();
      return list(c, "SELECT seq, at, content, prev_hash, hash FROM audit_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
          tenant, afterSeq, limit,
          rs -> new AuditEntry(rs.getLong(1), IsoInstants.parse(rs.getString(2)), rs.getString(3), rs.getString(4), rs.getString(5)));
    }

    @Override
    public List<LoggedMutation> logged(long afterSeq, int limit) {
      check();
      return list(c, "SELECT " + LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
          tenant, afterSeq, limit, SqliteServerStore::logged);
    }

    @Override
    public List<OutcomeRow> outcomeRows(long afterSeq, int limit) {
      check();
      return list(c, "SELECT seq, device_id, result, at FROM outcomes WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
          tenant, afterSeq, limit, SqliteServerStore::outcome);
    }

    private void check() {
      if (!open) {
        throw new IllegalStateException("the read transaction has ended");
      }
    }
  }

  /** Rows of a {@code tenant_id = ? AND seq > ? ... LIMIT ?} query on {@code c}. */
  private static <T> List<T> list(Connection c, String sql, String tenant, long afterSeq, int limit, RowMapper<T> mapper) {
    return sql(() -> {
      List<T> out = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setString(1, tenant);
        ps.setLong(2, afterSeq);
        ps.setInt(3, limit);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.add(mapper.map(rs));
          }
        }
      }
      return out;
    });
  }

  @Override
  public List<LoggedMutation> recordLog(String tenantId, RecordKey key, int limit) {
    return query("SELECT " + LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND collection = ? AND record_id = ?"
        + " ORDER BY seq LIMIT ?", ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, key.collection());
          ps.setString(3, key.recordId().toString());
          ps.setInt(4, limit);
        }, SqliteServerStore::logged);
  }

  @Override
  public List<InboxItem> inbox(String tenantId, Optional<String> status, Optional<String> kind, Optional<String> collection, int limit) {
    StringBuilder sql = new StringBuilder("SELECT " + INBOX_COLUMNS + " FROM inbox_items WHERE tenant_id = ?");
    List<String> args = new ArrayList<>(List.of(tenantId));
    status.ifPresent(v -> { sql.append(" AND status = ?"); args.add(v); });
    kind.ifPresent(v -> { sql.append(" AND kind = ?"); args.add(v); });
    collection.ifPresent(v -> { sql.append(" AND collection = ?"); args.add(v); });
    // Insertion order is creation order; ISO text of varying precision would not sort as time.
    sql.append(" ORDER BY rowid DESC LIMIT ?");
    return query(sql.toString(), ps -> {
      for (int i = 0; i < args.size(); i++) {
        ps.setString(i + 1, args.get(i));
      }
      ps.setInt(args.size() + 1, limit);
    }, SqliteServerStore::inboxItem);
  }

  @Override
  public org.civicsync.server.store.TenantCounts counts(String tenantId, Instant since) {
    // received_at is ISO text of varying precision: compare it as time (julianday), not as text.
    List<org.civicsync.server.store.TenantCounts.LogCount> log = query(
        "SELECT device_id, status, json_extract(result, '$.error.code'), note IS NOT NULL, count(*) FROM mutation_log"
            + " WHERE tenant_id = ? AND julianday(received_at) >= julianday(?) GROUP BY 1, 2, 3, 4",
        ps -> { ps.setString(1, tenantId); ps.setString(2, since.toString()); },
        rs -> new org.civicsync.server.store.TenantCounts.LogCount(UUID.fromString(rs.getString(1)), rs.getString(2),
            Optional.ofNullable(rs.getString(3)), rs.getInt(4) != 0, rs.getLong(5)));
    List<org.civicsync.server.store.TenantCounts.HeldCount> held = query(
        "SELECT device_id, count(*) FROM held_mutations WHERE tenant_id = ? GROUP BY device_id",
        ps -> ps.setString(1, tenantId),
        rs -> new org.civicsync.server.store.TenantCounts.HeldCount(UUID.fromString(rs.getString(1)), rs.getLong(2)));
    List<org.civicsync.server.store.TenantCounts.InboxCount> inbox = query(
        "SELECT device_id, kind, count(*) FROM inbox_items WHERE tenant_id = ? AND status = 'open' GROUP BY device_id, kind",
        ps -> ps.setString(1, tenantId),
        rs -> new org.civicsync.server.store.TenantCounts.InboxCount(Optional.ofNullable(uuid(rs.getString(1))), rs.getString(2), rs.getLong(3)));
    List<org.civicsync.server.store.TenantCounts.TrafficCount> traffic = query(
        "SELECT device_id, sum(bytes_in), sum(bytes_out) FROM device_traffic WHERE tenant_id = ? AND day >= ? GROUP BY device_id",
        ps -> { ps.setString(1, tenantId); ps.setString(2, since.atZone(java.time.ZoneOffset.UTC).toLocalDate().toString()); },
        rs -> new org.civicsync.server.store.TenantCounts.TrafficCount(UUID.fromString(rs.getString(1)), rs.getLong(2), rs.getLong(3)));
    return new org.civicsync.server.store.TenantCounts(log, held, inbox, traffic);
  }

  @Override
  public void addTraffic(java.util.Collection<org.civicsync.server.store.DeviceTraffic> traffic) {
    if (traffic.isEmpty()) {
      return;
    }
    inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO device_traffic (tenant_id, device_id, day, bytes_in, bytes_out)"
          + " VALUES (?,?,?,?,?) ON CONFLICT (tenant_id, device_id, day) DO UPDATE SET bytes_in = bytes_in + excluded.bytes_in,"
          + " bytes_out = bytes_out + excluded.bytes_out")) {
        for (org.civicsync.server.store.DeviceTraffic t : traffic) {
          ps.setString(1, t.tenantId());
          ps.setString(2, t.deviceId().toString());
          ps.setString(3, t.day().toString());
          ps.setLong(4, t.bytesIn());
          ps.setLong(5, t.bytesOut());
          ps.addBatch();
        }
        ps.executeBatch();
      }
      return null;
    });
  }

  private static final String INBOX_COLUMNS =
      "id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at, resolved_at, resolution";

  private static InboxItem inboxItem(ResultSet rs) throws SQLException {
    String resolution = rs.getString(11);
    return new InboxItem(UUID.fromString(rs.getString(1)), rs.getString(2), rs.getString(3), rs.getString(4),
        UUID.fromString(rs.getString(5)), uuid(rs.getString(6)), uuid(rs.getString(7)), StoreJson.object(rs.getString(8)),
        IsoInstants.parse(rs.getString(9)), instant(rs.getString(10)), resolution == null ? null : StoreJson.object(resolution));
  }

  private static HeldMutation heldMutation(ResultSet rs) throws SQLException {
    return new HeldMutation(UUID.fromString(rs.getString(1)), StoreJson.mutation(rs.getString(2)), rs.getString(3),
        IsoInstants.parse(rs.getString(4)));
  }

  @Override
  public List<DeviceKey> devicesWithHoldsBefore(Instant cutoff) {
    // received_at is ISO text of varying precision, so compare as instants here, not as text in SQL.
    return query("SELECT tenant_id, device_id, min(received_at) FROM held_mutations GROUP BY tenant_id, device_id", ps -> { },
        rs -> IsoInstants.parse(rs.getString(3)).isBefore(cutoff) ? new DeviceKey(rs.getString(1), UUID.fromString(rs.getString(2))) : null)
        .stream().filter(java.util.Objects::nonNull).toList();
  }

  @Override
  public List<OutcomeRow> outcomes(String tenantId, UUID deviceId, long afterSeq, int limit) {
    return query("SELECT seq, device_id, result, at FROM outcomes WHERE tenant_id = ? AND device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, deviceId.toString());
          ps.setLong(3, afterSeq);
          ps.setInt(4, limit);
        }, SqliteServerStore::outcome);
  }

  private static UUID uuid(String s) {
    return s == null ? null : UUID.fromString(s);
  }

  @Override
  public Optional<StoredRecord> findRecord(String tenantId, RecordKey key) {
    return query("SELECT " + RECORD_COLUMNS + " FROM records WHERE tenant_id = ? AND collection = ? AND record_id = ?"
        + " UNION ALL SELECT " + GRAVE_COLUMNS + " FROM graveyard WHERE tenant_id = ? AND collection = ? AND record_id = ?", ps -> {
          for (int i = 0; i < 2; i++) {
            ps.setString(3 * i + 1, tenantId);
            ps.setString(3 * i + 2, key.collection());
            ps.setString(3 * i + 3, key.recordId().toString());
          }
        }, SqliteServerStore::record).stream().findFirst();
  }

  @Override
  public FeedBounds feedBounds(String tenantId) {
    return query("SELECT head, watermark FROM tenant_heads WHERE tenant_id = ?", ps -> ps.setString(1, tenantId),
        rs -> new FeedBounds(rs.getLong(1), rs.getLong(2))).stream().findFirst().orElse(new FeedBounds(0, 0));
  }

  @Override
  public long watermark(String tenantId) {
    return query("SELECT watermark FROM tenant_heads WHERE tenant_id = ?", ps -> ps.setString(1, tenantId), rs -> rs.getLong(1))
        .stream().findFirst().orElse(0L);
  }

  @Override
  public int prunePublishedEvents(Instant cutoff, int limit) {
    return inWriteTransaction(c -> {
      try (PreparedStatement ps = c.prepareStatement("DELETE FROM domain_events WHERE rowid IN (SELECT rowid FROM domain_events"
          + " WHERE published_at IS NOT NULL AND published_at < ? LIMIT ?)")) {
        ps.setString(1, cutoff.toString());
        ps.setInt(2, limit);
        return ps.executeUpdate();
      }
    });
  }

  @Override
  public List<StoredRecord> listRecords(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after, int limit) {
    List<String> args = new ArrayList<>();
    String sql = byFields(tenantId, collection, equals, after, args);
    return query(sql, ps -> {
      for (int i = 0; i < args.size(); i++) {
        ps.setString(i + 1, args.get(i));
      }
      ps.setInt(args.size() + 1, limit);
    }, SqliteServerStore::record);
  }

  /** Live records of a collection by scalar field values; {@code args} receives the parameters but the limit. */
  private static String byFields(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after,
      List<String> args) {
    StringBuilder sql = new StringBuilder("SELECT " + RECORD_COLUMNS + " FROM records"
        + " WHERE tenant_id = ? AND collection = ? AND deleted = 0");
    args.add(tenantId);
    args.add(collection);
    for (Map.Entry<String, String> e : equals.entrySet()) {
      // A string compares as itself, anything else as its JSON text; the path is bound, not spliced.
      sql.append(" AND (CASE json_type(data, ?) WHEN 'text' THEN data ->> ? ELSE data -> ? END) = ?");
      String path = "$.\"" + e.getKey().replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
      args.add(path);
      args.add(path);
      args.add(path);
      args.add(e.getValue());
    }
    after.ifPresent(a -> {
      sql.append(" AND record_id > ?");
      args.add(a.toString());
    });
    return sql.append(" ORDER BY record_id LIMIT ?").toString();
  }

  @Override
  public void ping() {
    query("SELECT 1", ps -> { }, rs -> rs.getInt(1));
  }

  @Override
  public void close() {
    pool.close();
  }

  private final class Tx implements WriteTx {
    private final Connection c;
    private final String tenant;
    private final long head;
    private AuditHead audit;
    private org.civicsync.server.store.CommitNotice notice;

    @Override
    public void announce(org.civicsync.server.store.CommitNotice n) {
      notice = n;
    }

    @Override
    public void appendEvents(List<org.civicsync.server.store.OutboxEvent> events) {
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO domain_events (tenant_id, seq, event_id, subject, payload, created_at)"
          + " VALUES (?,?,?,?,?,?)")) {
        for (org.civicsync.server.store.OutboxEvent e : events) {
          ps.setString(1, e.tenantId());
          ps.setLong(2, e.seq());
          ps.setString(3, e.eventId().toString());
          ps.setString(4, e.subject());
          ps.setString(5, e.payload());
          ps.setString(6, e.createdAt().toString());
          ps.addBatch();
        }
        ps.executeBatch();
      } catch (SQLException ex) {
        throw new IllegalStateException("writing domain events failed", ex);
      }
    }

    Tx(Connection c, String tenant, long head, AuditHead audit, long watermark) {
      this.c = c;
      this.tenant = tenant;
      this.head = head;
      this.audit = audit;
      this.watermark = watermark;
    }

    // The graveyard is consulted only once the tenant has compacted something.
    private long watermark;

    @Override
    public List<StoredRecord> buryTombstones(long afterSeq, long throughSeq) {
      List<StoredRecord> buried = inSeqRange("SELECT " + RECORD_COLUMNS + " FROM records"
          + " WHERE tenant_id = ? AND seq > ? AND seq <= ? AND deleted = 1 ORDER BY seq", afterSeq, throughSeq, SqliteServerStore::record);
      return sql(() -> {
        if (buried.isEmpty()) {
          return buried;
        }
        try (PreparedStatement ins = c.prepareStatement("INSERT OR REPLACE INTO graveyard (tenant_id, collection, record_id, version, seq,"
                + " updated_at, field_hlc, scope_key) SELECT tenant_id, collection, record_id, version, seq, updated_at, field_hlc, scope_key"
                + " FROM records WHERE tenant_id = ? AND collection = ? AND record_id = ?");
            PreparedStatement del = c.prepareStatement("DELETE FROM records WHERE tenant_id = ? AND collection = ? AND record_id = ?");
            PreparedStatement claims = c.prepareStatement("DELETE FROM rule_claims WHERE tenant_id = ? AND collection = ? AND record_id = ?")) {
          for (StoredRecord r : buried) {
            for (PreparedStatement ps : List.of(ins, del, claims)) {
              ps.setString(1, tenant);
              ps.setString(2, r.collection());
              ps.setString(3, r.recordId().toString());
              ps.addBatch();
            }
          }
          ins.executeBatch();
          del.executeBatch();
          claims.executeBatch();
        }
        return buried;
      });
    }

    @Override
    public long dropScopeMoves(long afterSeq, long throughSeq) {
      long max = inSeqRange("SELECT coalesce(max(seq), 0) FROM scope_moves WHERE tenant_id = ? AND seq > ? AND seq <= ?", afterSeq,
          throughSeq, rs -> rs.getLong(1)).get(0);
      if (max > 0) {
        update("DELETE FROM scope_moves WHERE tenant_id = ? AND seq > ? AND seq <= ?", tenant, Long.toString(afterSeq),
            Long.toString(throughSeq));
      }
      return max;
    }

    @Override
    public List<LoggedMutation> supersededLog(long afterSeq, long throughSeq) {
      return inSeqRange("SELECT " + LOG_COLUMNS + " FROM mutation_log l"
          + " WHERE l.tenant_id = ? AND l.seq > ? AND l.seq <= ? AND l.detail_digest IS NOT NULL AND l.compacted_at IS NULL"
          + " AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = l.tenant_id AND r.seq = l.seq) ORDER BY l.seq",
          afterSeq, throughSeq, SqliteServerStore::logged);
    }

    /** The rows of a query whose parameters are this tenant and a range of seqs, ({@code afterSeq}, {@code throughSeq}]. */
    private <T> List<T> inSeqRange(String select, long afterSeq, long throughSeq, RowMapper<T> mapper) {
      return sql(() -> {
        List<T> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(select)) {
          ps.setString(1, tenant);
          ps.setLong(2, afterSeq);
          ps.setLong(3, throughSeq);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              out.add(mapper.map(rs));
            }
          }
        }
        return out;
      });
    }

    @Override
    public void compactLog(List<LoggedMutation> compacted) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("UPDATE mutation_log SET mutation = ?, after_state = NULL, record_version = NULL, compacted_at = ?"
            + " WHERE tenant_id = ? AND seq = ? AND mutation_id = ?")) {
          for (LoggedMutation e : compacted) {
            ps.setString(1, StoreJson.write(e.mutation()));
            ps.setString(2, e.compactedAt().toString());
            ps.setString(3, tenant);
            ps.setLong(4, e.seq());
            ps.setString(5, e.mutation().mutationId().toString());
            ps.addBatch();
          }
          for (int n : ps.executeBatch()) {
            if (n != 1) {
              throw new IllegalStateException("a compacted log entry is not in the log");
            }
          }
        }
        return null;
      });
    }

    @Override
    public long watermark() {
      return watermark;
    }

    @Override
    public void raiseWatermark(long seq) {
      if (seq > watermark) {
        update("UPDATE tenant_heads SET watermark = ? WHERE tenant_id = ?", Long.toString(seq), tenant);
        watermark = seq;
      }
    }

    @Override
    public long head() {
      return head;
    }

    @Override
    public void insertEnrollmentCode(EnrollmentCodeRow code) {
      ownTenant(code.tenantId());
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO enrollment_codes (code_hash, tenant_id, label, created_at, expires_at,"
            + " max_uses, uses, user_id) VALUES (?,?,?,?,?,?,?,?)")) {
          ps.setString(1, code.codeHash());
          ps.setString(2, tenant);
          ps.setString(3, code.label());
          ps.setString(4, code.createdAt().toString());
          ps.setString(5, code.expiresAt().toString());
          ps.setInt(6, code.maxUses());
          ps.setInt(7, code.uses());
          ps.setString(8, code.userId());
          ps.executeUpdate();
        }
        return null;
      });
    }

    @Override
    public Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now) {
      return sql(() -> {
        EnrollmentCodeRow row;
        try (PreparedStatement ps = c.prepareStatement("SELECT " + CODE_COLUMNS + " FROM enrollment_codes WHERE code_hash = ? AND tenant_id = ?")) {
          ps.setString(1, codeHash);
          ps.setString(2, tenant);
          try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) {
              return Optional.<EnrollmentCodeRow>empty();
            }
            row = enrollmentCode(rs);
          }
        }
        // Compared as instants, not as text: ISO strings of different precision do not sort as time.
        if (!now.isBefore(row.expiresAt()) || row.uses() >= row.maxUses()) {
          return Optional.<EnrollmentCodeRow>empty();
        }
        try (PreparedStatement ps = c.prepareStatement("UPDATE enrollment_codes SET uses = uses + 1 WHERE code_hash = ? AND tenant_id = ?")) {
          ps.setString(1, codeHash);
          ps.setString(2, tenant);
          ps.executeUpdate();
        }
        return Optional.of(row);
      });
    }

    @Override
    public void insertDevice(DeviceRow d) {
      ownTenant(d.tenantId());
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO devices (" + DEVICE_COLUMNS + ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")) {
          ps.setString(1, d.deviceId().toString());
          ps.setString(2, tenant);
          ps.setString(3, d.name());
          ps.setString(4, d.publicKey());
          ps.setString(5, d.tokenHash());
          ps.setString(6, d.enrolledAt().toString());
          ps.setString(7, text(d.lastPushAt()));
          ps.setString(8, text(d.lastPullAt()));
          ps.setString(9, d.kind());
          ps.setString(10, d.userId());
          ps.setString(11, text(d.tokenExpiresAt()));
          ps.setString(12, text(d.revokedAt()));
          ps.executeUpdate();
        }
        return null;
      });
    }

    @Override
    public void renewToken(UUID deviceId, String tokenHash, Instant expiresAt) {
      update("UPDATE devices SET token_hash = ?, token_expires_at = ? WHERE tenant_id = ? AND device_id = ?", tokenHash,
          text(expiresAt), tenant, deviceId.toString());
    }

    @Override
    public boolean revokeDevice(UUID deviceId, Instant at) {
      // coalesce keeps the first revocation time; the row count says whether it is this tenant's device.
      return update("UPDATE devices SET revoked_at = coalesce(revoked_at, ?) WHERE tenant_id = ? AND device_id = ?", at.toString(),
          tenant, deviceId.toString()) > 0;
    }

    @Override
    public void putUser(UserRow u) {
      ownTenant(u.tenantId());
      update("INSERT INTO users (tenant_id, user_id, roles, org_units, created_at, updated_at) VALUES (?,?,?,?,?,?)"
          + " ON CONFLICT (tenant_id, user_id) DO UPDATE SET roles = excluded.roles, org_units = excluded.org_units,"
          + " created_at = excluded.created_at, updated_at = excluded.updated_at",
          tenant, u.userId(), jsonArray(u.roles()), jsonArray(u.orgUnits()), u.createdAt().toString(), u.updatedAt().toString());
    }

    @Override
    public void putOrgUnit(OrgUnitRow u) {
      ownTenant(u.tenantId());
      update("INSERT INTO org_units (tenant_id, org_unit_id, parent, name, updated_at) VALUES (?,?,?,?,?)"
          + " ON CONFLICT (tenant_id, org_unit_id) DO UPDATE SET parent = excluded.parent, name = excluded.name,"
          + " updated_at = excluded.updated_at",
          tenant, u.orgUnitId(), u.parent().orElse(null), u.name(), u.updatedAt().toString());
    }

    @Override
    public void recordMoves(List<ScopeMove> moves) {
      if (moves.isEmpty()) {
        return;
      }
      sql(() -> {
        // The same move recorded twice is the same fact: keep one row.
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO scope_moves (tenant_id, seq, collection, record_id, from_key)"
            + " VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING")) {
          for (ScopeMove m : moves) {
            ps.setString(1, tenant);
            ps.setLong(2, m.seq());
            ps.setString(3, m.collection());
            ps.setString(4, m.recordId().toString());
            ps.setString(5, m.fromKey());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public AuditHead auditHead() {
      return audit;
    }

    @Override
    public void appendAudit(AuditEntry e) {
      if (e.seq() != audit.seq() + 1 || !audit.hash().equals(e.prevHash())) {
        throw new IllegalStateException("audit entry " + e.seq() + " does not follow the head " + audit);
      }
      sql(() -> {
        try (PreparedStatement ins = c.prepareStatement(
                "INSERT INTO audit_log (tenant_id, seq, at, content, prev_hash, hash) VALUES (?,?,?,?,?,?)");
            PreparedStatement up = c.prepareStatement("UPDATE tenant_heads SET audit_seq = ?, audit_hash = ? WHERE tenant_id = ?")) {
          ins.setString(1, tenant);
          ins.setLong(2, e.seq());
          ins.setString(3, e.at().toString());
          ins.setString(4, e.content());
          ins.setString(5, e.prevHash());
          ins.setString(6, e.hash());
          ins.executeUpdate();
          up.setLong(1, e.seq());
          up.setString(2, e.hash());
          up.setString(3, tenant);
          up.executeUpdate();
        }
        return null;
      });
      audit = new AuditHead(e.seq(), e.hash());
    }

    private void ownTenant(String tenantId) {
      if (!tenant.equals(tenantId)) {
        throw new IllegalArgumentException("a row of tenant " + tenantId + " written in a transaction of " + tenant);
      }
    }

    @Override
    public Map<UUID, LoggedMutation> findLogged(Collection<UUID> ids) {
      Map<UUID, LoggedMutation> out = new HashMap<>();
      eachIn("SELECT " + LOG_COLUMNS + " FROM mutation_log"
          + " WHERE tenant_id = ? AND mutation_id", "", ids, rs -> {
            LoggedMutation e = logged(rs);
            out.put(e.mutation().mutationId(), e);
          });
      return out;
    }

    @Override
    public Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys) {
      Map<RecordKey, StoredRecord> out = new HashMap<>();
      findByKey("SELECT " + RECORD_COLUMNS + " FROM records", keys, out);
      if (watermark > 0 && out.size() < keys.size()) {
        findByKey("SELECT " + GRAVE_COLUMNS + " FROM graveyard", keys.stream().filter(k -> !out.containsKey(k)).toList(), out);
      }
      return out;
    }

    /**
     * The rows of {@code from} (records or graveyard) with these keys, into {@code out}. By
     * collection, then by id: both tables' primary key is (tenant_id, collection, record_id), and a
     * lookup that left the collection out could use only its first column — a scan of the tenant's
     * every record for each push, slower as the tenant grew (benchmarks.md, item 30).
     */
    private void findByKey(String from, Collection<RecordKey> keys, Map<RecordKey, StoredRecord> out) {
      for (Map.Entry<String, List<UUID>> c : byCollection(keys).entrySet()) {
        eachIn(from + " WHERE tenant_id = ? AND collection = ? AND record_id", "", c.getKey(), c.getValue(), rs -> {
          StoredRecord r = record(rs);
          out.put(r.key(), r);
        });
      }
    }

    private static Map<String, List<UUID>> byCollection(Collection<RecordKey> keys) {
      Map<String, List<UUID>> out = new java.util.LinkedHashMap<>();
      for (RecordKey k : keys) {
        out.computeIfAbsent(k.collection(), x -> new ArrayList<>()).add(k.recordId());
      }
      return out;
    }

    @Override
    public Optional<RecordState> findVersion(RecordKey key, long version) {
      return sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("SELECT after_state FROM mutation_log WHERE tenant_id = ? AND collection = ?"
            + " AND record_id = ? AND record_version = ? AND after_state IS NOT NULL ORDER BY seq DESC LIMIT 1")) {
          ps.setString(1, tenant);
          ps.setString(2, key.collection());
          ps.setString(3, key.recordId().toString());
          ps.setLong(4, version);
          try (ResultSet rs = ps.executeQuery()) {
            return rs.next() ? Optional.of(StoreJson.state(rs.getString(1))) : Optional.<RecordState>empty();
          }
        }
      });
    }

    @Override
    public void openInboxItems(List<InboxItem> items) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO inbox_items (tenant_id, id, kind, status, collection, record_id,"
            + " mutation_id, device_id, detail, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)")) {
          for (InboxItem i : items) {
            ps.setString(1, tenant);
            ps.setString(2, i.id().toString());
            ps.setString(3, i.kind());
            ps.setString(4, i.status());
            ps.setString(5, i.collection());
            ps.setString(6, i.recordId().toString());
            ps.setString(7, i.mutationId() == null ? null : i.mutationId().toString());
            ps.setString(8, i.deviceId() == null ? null : i.deviceId().toString());
            ps.setString(9, StoreJson.write(i.detail()));
            ps.setString(10, i.createdAt().toString());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public Optional<InboxItem> findInboxItem(UUID id) {
      return sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + INBOX_COLUMNS + " FROM inbox_items WHERE tenant_id = ? AND id = ?")) {
          ps.setString(1, tenant);
          ps.setString(2, id.toString());
          try (ResultSet rs = ps.executeQuery()) {
            return rs.next() ? Optional.of(inboxItem(rs)) : Optional.<InboxItem>empty();
          }
        }
      });
    }

    @Override
    public void resolveInboxItem(UUID id, com.fasterxml.jackson.databind.node.ObjectNode resolution, Instant at) {
      update("UPDATE inbox_items SET status = 'resolved', resolved_at = ?, resolution = ? WHERE tenant_id = ? AND id = ?",
          at.toString(), StoreJson.write(resolution), tenant, id.toString());
    }

    @Override
    public void appendOutcomes(List<OutcomeRow> rows) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement(
            "INSERT INTO outcomes (tenant_id, seq, device_id, mutation_id, result, at) VALUES (?,?,?,?,?,?)")) {
          for (OutcomeRow r : rows) {
            ps.setString(1, tenant);
            ps.setLong(2, r.seq());
            ps.setString(3, r.deviceId().toString());
            ps.setString(4, r.result().mutationId().toString());
            ps.setString(5, StoreJson.write(r.result()));
            ps.setString(6, r.at().toString());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public Map<UUID, org.civicsync.contracts.MutationResult> latestOutcomes(Collection<UUID> mutationIds) {
      Map<UUID, org.civicsync.contracts.MutationResult> out = new HashMap<>();
      eachIn("SELECT result FROM outcomes WHERE tenant_id = ? AND mutation_id", " ORDER BY seq", mutationIds, rs -> {
        org.civicsync.contracts.MutationResult r = StoreJson.result(rs.getString(1));
        out.put(r.mutationId(), r); // ascending seq: the last one seen is the latest
      });
      return out;
    }

    @Override
    public DeviceQueue deviceQueue(UUID deviceId) {
      return sql(() -> {
        long progress = 0;
        try (PreparedStatement ps = c.prepareStatement("SELECT progress FROM device_progress WHERE tenant_id = ? AND device_id = ?")) {
          ps.setString(1, tenant);
          ps.setString(2, deviceId.toString());
          try (ResultSet rs = ps.executeQuery()) {
            if (rs.next()) {
              progress = rs.getLong(1);
            }
          }
        }
        List<HeldMutation> held = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT device_id, mutation, content_hash, received_at FROM held_mutations"
            + " WHERE tenant_id = ? AND device_id = ? ORDER BY device_seq, received_at")) {
          ps.setString(1, tenant);
          ps.setString(2, deviceId.toString());
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              held.add(heldMutation(rs));
            }
          }
        }
        return new DeviceQueue(progress, held);
      });
    }

    @Override
    public void setDeviceProgress(UUID deviceId, long deviceSeq) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO device_progress (tenant_id, device_id, progress) VALUES (?,?,?)"
            + " ON CONFLICT (tenant_id, device_id) DO UPDATE SET progress = max(progress, excluded.progress)")) {
          ps.setString(1, tenant);
          ps.setString(2, deviceId.toString());
          ps.setLong(3, deviceSeq);
          ps.executeUpdate();
        }
        return null;
      });
    }

    @Override
    public Map<UUID, HeldMutation> findHeld(Collection<UUID> mutationIds) {
      Map<UUID, HeldMutation> out = new HashMap<>();
      eachIn("SELECT device_id, mutation, content_hash, received_at FROM held_mutations WHERE tenant_id = ? AND mutation_id", "",
          mutationIds, rs -> {
            HeldMutation h = heldMutation(rs);
            out.put(h.mutation().mutationId(), h);
          });
      return out;
    }

    @Override
    public void hold(List<HeldMutation> held) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO held_mutations (tenant_id, mutation_id, device_id, device_seq,"
            + " mutation, content_hash, received_at) VALUES (?,?,?,?,?,?,?)")) {
          for (HeldMutation h : held) {
            ps.setString(1, tenant);
            ps.setString(2, h.mutation().mutationId().toString());
            ps.setString(3, h.deviceId().toString());
            ps.setLong(4, h.deviceSeq());
            ps.setString(5, StoreJson.write(h.mutation()));
            ps.setString(6, h.contentHash());
            ps.setString(7, h.receivedAt().toString());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public void release(Collection<UUID> mutationIds) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("DELETE FROM held_mutations WHERE tenant_id = ? AND mutation_id = ?")) {
          for (UUID id : mutationIds) {
            ps.setString(1, tenant);
            ps.setString(2, id.toString());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public List<StoredRecord> findByFields(String collection, Map<String, String> equals, int limit) {
      List<String> args = new ArrayList<>();
      String q = byFields(tenant, collection, equals, Optional.empty(), args);
      return sql(() -> {
        List<StoredRecord> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(q)) {
          for (int i = 0; i < args.size(); i++) {
            ps.setString(i + 1, args.get(i));
          }
          ps.setInt(args.size() + 1, limit);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              out.add(record(rs));
            }
          }
        }
        return out;
      });
    }

    /**
     * Runs {@code select + " IN (?, …)" + suffix} over the ids in chunks (SQLite caps host
     * parameters), the tenant bound first, feeding each row to {@code row}.
     */
    private void eachIn(String select, String suffix, Collection<?> ids, RowConsumer row) {
      eachIn(select, suffix, null, ids, row);
    }

    /** The same, with {@code also} (when not null) bound after the tenant, before the ids. */
    private void eachIn(String select, String suffix, String also, Collection<?> ids, RowConsumer row) {
      List<String> all = ids.stream().map(Object::toString).distinct().toList();
      int first = also == null ? 2 : 3;
      for (int from = 0; from < all.size(); from += CHUNK) {
        List<String> chunk = all.subList(from, Math.min(all.size(), from + CHUNK));
        String q = select + " IN (" + "?,".repeat(chunk.size() - 1) + "?)" + suffix;
        sql(() -> {
          try (PreparedStatement ps = c.prepareStatement(q)) {
            ps.setString(1, tenant);
            if (also != null) {
              ps.setString(2, also);
            }
            for (int i = 0; i < chunk.size(); i++) {
              ps.setString(i + first, chunk.get(i));
            }
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                row.accept(rs);
              }
            }
          }
          return null;
        });
      }
    }

    @Override
    public void appendLog(List<LoggedMutation> entries) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement(
            "INSERT INTO mutation_log (tenant_id, mutation_id, seq, device_id, collection, record_id, op, status, content_hash, mutation, result,"
                + " received_at, record_version, after_state, note, detail_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")) {
          // The rows' text forms first, on every core (RowWork): the store's one writer waits for them.
          int n = entries.size();
          String[][] text = new String[n][];
          RowWork.each(n, i -> {
            LoggedMutation e = entries.get(i);
            text[i] = new String[] {StoreJson.write(e.mutation()), StoreJson.write(e.result()),
                e.after() == null ? null : StoreJson.write(e.after()), e.note() == null ? null : StoreJson.write(e.note())};
          });
          for (int i = 0; i < n; i++) {
            LoggedMutation e = entries.get(i);
            ps.setString(1, tenant);
            ps.setString(2, e.mutation().mutationId().toString());
            ps.setLong(3, e.seq());
            ps.setString(4, e.deviceId().toString());
            ps.setString(5, e.mutation().collection());
            ps.setString(6, e.mutation().recordId().toString());
            ps.setString(7, e.mutation().op().wire());
            ps.setString(8, e.result().status().wire());
            ps.setString(9, e.contentHash());
            ps.setString(10, text[i][0]);
            ps.setString(11, text[i][1]);
            ps.setString(12, e.receivedAt().toString());
            if (e.after() == null) {
              ps.setNull(13, java.sql.Types.INTEGER);
              ps.setNull(14, java.sql.Types.VARCHAR);
            } else {
              ps.setLong(13, e.after().version());
              ps.setString(14, text[i][2]);
            }
            ps.setString(15, text[i][3]);
            ps.setString(16, e.detailDigest());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public void putRecords(Collection<StoredRecord> records) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement(
            "INSERT INTO records (tenant_id, collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key)"
                + " VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (tenant_id, collection, record_id) DO UPDATE SET version = excluded.version,"
                + " deleted = excluded.deleted, data = excluded.data, seq = excluded.seq, updated_at = excluded.updated_at,"
                + " field_hlc = excluded.field_hlc, scope_key = excluded.scope_key")) {
          List<StoredRecord> rows = List.copyOf(records);
          String[] data = new String[rows.size()];
          String[] clocks = new String[rows.size()];
          RowWork.each(rows.size(), i -> {
            StoredRecord r = rows.get(i);
            data[i] = r.data() == null ? null : StoreJson.write(r.data());
            clocks[i] = StoreJson.write(r.fieldHlc());
          });
          for (int i = 0; i < rows.size(); i++) {
            StoredRecord r = rows.get(i);
            ps.setString(1, tenant);
            ps.setString(2, r.collection());
            ps.setString(3, r.recordId().toString());
            ps.setLong(4, r.version());
            ps.setInt(5, r.deleted() ? 1 : 0);
            ps.setString(6, data[i]);
            ps.setLong(7, r.seq());
            ps.setString(8, r.updatedAt().toString());
            ps.setString(9, clocks[i]);
            ps.setString(10, r.scopeKey());
            ps.addBatch();
          }
          ps.executeBatch();
        }
        return null;
      });
    }

    @Override
    public void forEachLogged(Consumer<LoggedMutation> consumer) {
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement(
            "SELECT " + LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? ORDER BY seq")) {
          ps.setString(1, tenant);
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
              consumer.accept(logged(rs));
            }
          }
        }
        return null;
      });
    }

    @Override
    public Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims) {
      Map<Claim, Set<UUID>> out = new HashMap<>();
      List<Claim> all = new ArrayList<>(claims);
      for (Claim cl : all) {
        out.put(cl, new java.util.HashSet<>());
      }
      for (int from = 0; from < all.size(); from += CHUNK) {
        List<Claim> chunk = all.subList(from, Math.min(all.size(), from + CHUNK));
        String sql = "SELECT rule, claim_key, record_id FROM rule_claims WHERE tenant_id = ? AND (rule, claim_key) IN (VALUES "
            + "(?,?),".repeat(chunk.size() - 1) + "(?,?))";
        sql(() -> {
          try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, tenant);
            for (int i = 0; i < chunk.size(); i++) {
              ps.setString(2 + 2 * i, chunk.get(i).rule());
              ps.setString(3 + 2 * i, chunk.get(i).key());
            }
            try (ResultSet rs = ps.executeQuery()) {
              while (rs.next()) {
                out.get(new Claim(rs.getString(1), rs.getString(2))).add(UUID.fromString(rs.getString(3)));
              }
            }
          }
          return null;
        });
      }
      return out;
    }

    @Override
    public void putClaims(Map<RecordKey, List<Claim>> claims) {
      sql(() -> {
        try (PreparedStatement del = c.prepareStatement("DELETE FROM rule_claims WHERE tenant_id = ? AND collection = ? AND record_id = ?");
            PreparedStatement ins = c.prepareStatement(
                "INSERT INTO rule_claims (tenant_id, rule, claim_key, collection, record_id) VALUES (?,?,?,?,?)")) {
          for (Map.Entry<RecordKey, List<Claim>> e : claims.entrySet()) {
            del.setString(1, tenant);
            del.setString(2, e.getKey().collection());
            del.setString(3, e.getKey().recordId().toString());
            del.addBatch();
            for (Claim cl : e.getValue()) {
              ins.setString(1, tenant);
              ins.setString(2, cl.rule());
              ins.setString(3, cl.key());
              ins.setString(4, e.getKey().collection());
              ins.setString(5, e.getKey().recordId().toString());
              ins.addBatch();
            }
          }
          del.executeBatch();
          ins.executeBatch();
        }
        return null;
      });
    }

    @Override
    public void clearRecords() {
      update("DELETE FROM records WHERE tenant_id = ?", tenant);
      update("DELETE FROM rule_claims WHERE tenant_id = ?", tenant);
      update("DELETE FROM scope_moves WHERE tenant_id = ?", tenant);
    }

    @Override
    public void advanceHead(long newHead) {
      if (newHead < head) {
        throw new IllegalArgumentException("head may not move backwards");
      }
      sql(() -> {
        try (PreparedStatement ps = c.prepareStatement("UPDATE tenant_heads SET head = ? WHERE tenant_id = ?")) {
          ps.setLong(1, newHead);
          ps.setString(2, tenant);
          ps.executeUpdate();
        }
        return null;
      });
    }

    @Override
    public void markPushed(UUID deviceId, Instant at) {
      update("UPDATE devices SET last_push_at = ? WHERE tenant_id = ? AND device_id = ?", at.toString(), tenant, deviceId.toString());
    }

    private int update(String sql, String... args) {
      return sql(() -> {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
          for (int i = 0; i < args.length; i++) {
            ps.setString(i + 1, args[i]);
          }
          return ps.executeUpdate();
        }
      });
    }
  }

  // ------------------------------------------------------------------ plumbing

  private static final String LOG_COLUMNS =
      "seq, mutation, content_hash, device_id, result, received_at, after_state, note, detail_digest, compacted_at";

  private static OutcomeRow outcome(ResultSet rs) throws SQLException {
    return new OutcomeRow(rs.getLong(1), UUID.fromString(rs.getString(2)), StoreJson.result(rs.getString(3)), IsoInstants.parse(rs.getString(4)));
  }

  private static final TypeReference<List<String>> STRINGS = new TypeReference<>() {};

  /** A JSON array of strings as stored (user lists, key sets) or bound ({@code json_each(?)}). */
  private static String jsonArray(Collection<String> values) {
    return StoreJson.write(values instanceof Set<?> ? new TreeSet<>(values) : values);
  }

  private static List<String> strings(String json) {
    try {
      return Json.mapper().readValue(json, STRINGS);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("stored string list is not readable: " + e.getOriginalMessage(), e);
    }
  }

  private static LoggedMutation logged(ResultSet rs) throws SQLException {
    return new LoggedMutation(rs.getLong(1), StoreJson.mutation(rs.getString(2)), rs.getString(3),
        UUID.fromString(rs.getString(4)), StoreJson.result(rs.getString(5)), IsoInstants.parse(rs.getString(6)),
        rs.getString(7) == null ? null : StoreJson.state(rs.getString(7)), rs.getString(8) == null ? null : StoreJson.object(rs.getString(8)),
        rs.getString(9), instant(rs.getString(10)));
  }

  private static StoredRecord record(ResultSet rs) throws SQLException {
    String data = rs.getString(5);
    return new StoredRecord(rs.getString(1), UUID.fromString(rs.getString(2)), rs.getLong(3), rs.getInt(4) != 0,
        data == null ? null : StoreJson.object(data), rs.getLong(6), IsoInstants.parse(rs.getString(7)), StoreJson.clocks(rs.getString(8)),
        rs.getString(9));
  }

  private static String text(Instant i) {
    return i == null ? null : i.toString();
  }

  private static Instant instant(String s) {
    return s == null ? null : IsoInstants.parse(s);
  }

  @FunctionalInterface
  private interface SqlWork<T> {
    T run(Connection c) throws SQLException;
  }

  @FunctionalInterface
  private interface SqlBlock<T> {
    T run() throws SQLException;
  }

  @FunctionalInterface
  private interface Binder {
    void bind(PreparedStatement ps) throws SQLException;
  }

  @FunctionalInterface
  private interface RowConsumer {
    void accept(ResultSet rs) throws SQLException;
  }

  @FunctionalInterface
  private interface RowMapper<T> {
    T map(ResultSet rs) throws SQLException;
  }

  private static <T> T sql(SqlBlock<T> block) {
    try {
      return block.run();
    } catch (SQLException e) {
      throw new StoreUnavailableException("SQLite statement failed: " + e.getMessage(), e);
    }
  }

  private <T> List<T> query(String sql, Binder binder, RowMapper<T> mapper) {
    try (Connection c = pool.getConnection(); PreparedStatement ps = c.prepareStatement(sql)) {
      binder.bind(ps);
      List<T> out = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(mapper.map(rs));
        }
      }
      return out;
    } catch (SQLException e) {
      throw new StoreUnavailableException("SQLite query failed: " + e.getMessage(), e);
    }
  }

  /**
   * Runs {@code work} in one read transaction: its first SELECT fixes the WAL snapshot that every
   * later statement of it sees, so several queries read one consistent state. It takes neither the
   * writer lock nor SQLite's write lock, so writers go on meanwhile.
   */
  private <T> T inReadTransaction(SqlWork<T> work) {
    return inTransaction("BEGIN DEFERRED", "read", work);
  }

  /**
   * Runs {@code work} as the only writer, in one transaction begun IMMEDIATE (the write lock is
   * taken at BEGIN, so a transaction never fails half-way for want of it). Commits when work
   * returns; rolls back and rethrows when it throws.
   */
  private <T> T inWriteTransaction(SqlWork<T> work) {
    writer.lock();
    try {
      return inTransaction("BEGIN IMMEDIATE", "write", work);
    } finally {
      writer.unlock();
    }
  }

  /** One transaction on a pooled connection: begun with {@code begin}, committed, or rolled back on any failure. */
  private <T> T inTransaction(String begin, String kind, SqlWork<T> work) {
    try (Connection c = pool.getConnection()) {
      boolean auto = c.getAutoCommit();
      c.setAutoCommit(true);
      try (var st = c.createStatement()) {
        st.execute(begin);
      }
      try {
        T result = work.run(c);
        try (var st = c.createStatement()) {
          st.execute("COMMIT");
        }
        return result;
      } catch (SQLException | RuntimeException | Error e) {
        try (var st = c.createStatement()) {
          st.execute("ROLLBACK");
        } catch (SQLException suppressed) {
          e.addSuppressed(suppressed);
        }
        if (e instanceof SQLException sqle) {
          throw new StoreUnavailableException("SQLite " + kind + " failed: " + sqle.getMessage(), sqle);
        }
        throw e;
      } finally {
        c.setAutoCommit(auto);
      }
    } catch (SQLException e) {
      throw new StoreUnavailableException("SQLite connection failed: " + e.getMessage(), e);
    }
  }

}
