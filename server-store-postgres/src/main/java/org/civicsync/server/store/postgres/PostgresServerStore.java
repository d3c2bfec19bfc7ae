package org.civicsync.server.store.postgres;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.pool.HikariPool;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.locks.ReentrantLock;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Function;
import javax.sql.DataSource;
import org.civicsync.server.store.FeedBounds;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.DeviceKey;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
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
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.store.WriteTx;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.postgresql.ds.PGSimpleDataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@link ServerStore} on PostgreSQL. Open it with {@link #open}; it is thread-safe and holds a
 * connection pool until {@link #close}d.
 *
 * <p>Write transactions run at READ COMMITTED and begin by locking the tenant's {@code
 * tenant_heads} row, which serialises the tenant's writers (see {@link #write}). Reads are single
 * statements, each on one consistent snapshot, outside any write transaction; {@link #read} is
 * the one that spans several statements, in a REPEATABLE READ, READ ONLY transaction.
 */
public final class PostgresServerStore implements ServerStore {
  private final java.util.concurrent.ConcurrentMap<String, ReentrantLock> tenantGates =
      new java.util.concurrent.ConcurrentHashMap<>();

  private static final Logger LOG = LoggerFactory.getLogger(PostgresServerStore.class);

  /** Where the migrations live on the class path. */
  public static final String MIGRATIONS = "classpath:db/migration/postgres";

  /** Seconds {@link #ping} waits for {@code SELECT 1}; a readiness probe must answer quickly. */
  private static final int PING_TIMEOUT_SECONDS = 2;

  /**
   * How long a caller waits for a free pooled connection before the store reports itself
   * unavailable; long enough to ride out a burst, short enough that an HTTP request fails cleanly.
   */
  private static final long CONNECTION_TIMEOUT_MILLIS = 10_000;

  private final DataSource dataSource;
  private final AutoCloseable pool;

  private final CommitChannel commits;

  PostgresServerStore(DataSource dataSource, AutoCloseable pool) {
    this(dataSource, pool, PostgresConfig.DEFAULT_SCHEMA, FirstStatistics.disabled(), () -> {
      try {
        return dataSource.getConnection();
      } catch (SQLException e) {
        throw Sql.failure("opening the connection that listens for commits", e);
      }
    });
  }

  private final String schema;
  private final java.util.function.Supplier<Connection> listenOn;
  private final FirstStatistics firstStatistics;

  private PostgresServerStore(DataSource dataSource, AutoCloseable pool, String schema, FirstStatistics firstStatistics,
      java.util.function.Supplier<Connection> listenOn) {
    this.dataSource = dataSource;
    this.firstStatistics = firstStatistics;
    this.pool = pool;
    this.schema = schema;
    this.listenOn = listenOn;
    this.commits = new CommitChannel(schema, listenOn, this::tenantIds, this::head);
  }

  /**
   * Connects, brings the schema up to date with the migrations in {@value #MIGRATIONS} (creating
   * the schema when missing) and returns the store.
   *
   * @throws StoreUnavailableException when the database cannot be reached or the migrations fail
   */
  public static PostgresServerStore open(PostgresConfig config) {
    HikariDataSource ds;
    try {
      ds = new HikariDataSource(hikariConfig(config));
    } catch (HikariPool.PoolInitializationException e) {
      throw new StoreUnavailableException("cannot connect to PostgreSQL at " + PostgresConfig.redactedUrl(config.jdbcUrl())
          + ": " + rootMessage(e), e);
    }
    try {
      migrate(migrationDataSource(config), config.schema());
    } catch (RuntimeException e) {
      ds.close();
      if (e instanceof FlywayException) {
        throw new StoreUnavailableException("cannot migrate schema " + config.schema() + ": " + rootMessage(e), e);
      }
      throw e;
    }
    warnWithoutAutovacuum(ds);
    // The listener and the leader of a role hold their connections for good: their own, outside
    // the pool, named so that pg_stat_activity tells them apart.
    PGSimpleDataSource direct = (PGSimpleDataSource) migrationDataSource(config);
    direct.setApplicationName("civicsync-listener");
    return new PostgresServerStore(ds, ds, config.schema(), FirstStatistics.enabled(), () -> {
      try {
        return direct.getConnection();
      } catch (SQLException e) {
        throw Sql.failure("opening the connection that listens for commits", e);
      }
    });
  }

  /**
   * The write path's plans rely on table statistics, which autovacuum keeps fresh; with it off
   * they go stale as tables grow, and pushes slow down (docs/operations.md, "The store").
   */
  private static void warnWithoutAutovacuum(DataSource ds) {
    try (Connection c = ds.getConnection(); Statement st = c.createStatement();
        ResultSet rs = st.executeQuery("SHOW autovacuum")) {
      if (rs.next() && "off".equals(rs.getString(1))) {
        LOG.warn("PostgreSQL runs with autovacuum off: table statistics will go stale as the tables grow and writes slow down;"
            + " turn it on, or run ANALYZE on the schema regularly (docs/operations.md)");
      }
    } catch (SQLException e) {
      LOG.debug("could not read the autovacuum setting: {}", e.toString());
    }
  }

  private static HikariConfig hikariConfig(PostgresConfig config) {
    HikariConfig hc = new HikariConfig();
    hc.setPoolName("civicsync-postgres");
    hc.setJdbcUrl(config.jdbcUrl());
    if (!config.user().isEmpty()) {
      hc.setUsername(config.user());
    }
    if (!config.password().isEmpty()) {
      hc.setPassword(config.password());
    }
    hc.setSchema(config.schema());
    hc.setMaximumPoolSize(config.maxPoolSize());
    hc.setConnectionTimeout(CONNECTION_TIMEOUT_MILLIS);
    // Fail at start-up, not on the first request, when the database is unreachable.
    hc.setInitializationFailTimeout(1);
    hc.setAutoCommit(true);
    // Explicit, because the server's default may have been changed: under REPEATABLE READ or
    // SERIALIZABLE the second writer of a tenant would fail on the locked counter row instead of
    // waiting for it and then reading the committed head.
    hc.setTransactionIsolation("TRANSACTION_READ_COMMITTED");
    // The batch writes here are single unnest() statements; this makes any JDBC batch added later
    // travel as multi-row INSERTs instead of one statement per row.
    hc.addDataSourceProperty("reWriteBatchedInserts", "true");
    hc.addDataSourceProperty("ApplicationName", "civicsync");
    hc.addDataSourceProperty("tcpKeepAlive", "true");
    return hc;
  }

  /**
   * Flyway gets connections of its own, outside the pool: it holds more than one at a time while
   * migrating, which would deadlock a pool configured with a single connection.
   */
  private static DataSource migrationDataSource(PostgresConfig config) {
    PGSimpleDataSource ds = new PGSimpleDataSource();
    ds.setURL(config.jdbcUrl());
    if (!config.user().isEmpty()) {
      ds.setUser(config.user());
    }
    if (!config.password().isEmpty()) {
      ds.setPassword(config.password());
    }
    ds.setApplicationName("civicsync-migrations");
    return ds;
  }

  private static void migrate(DataSource ds, String schema) {
    var result = Flyway.configure(PostgresServerStore.class.getClassLoader())
        .dataSource(ds)
        .schemas(schema)
        .locations(MIGRATIONS)
        .cleanDisabled(true)
        .load()
        .migrate();
    if (result.migrationsExecuted > 0) {
      LOG.info("PostgreSQL schema {} migrated to version {}", schema, result.targetSchemaVersion);
    }
  }

  // ---------------------------------------------------------------- tenants

  @Override
  public boolean createTenant(TenantRow tenant) {
    // One statement, so the tenant and its counter appear together or not at all; a concurrent
    // creation of the same id waits for the first and then inserts nothing.
    return update("creating tenant " + tenant.tenantId(),
        "WITH t AS (INSERT INTO tenants (tenant_id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING RETURNING tenant_id)"
            + " INSERT INTO tenant_heads (tenant_id, head) SELECT tenant_id, 0 FROM t",
        ps -> {
          ps.setString(1, tenant.tenantId());
          ps.setObject(2, Sql.timestamp(tenant.createdAt()));
        }) == 1;
  }

  @Override
  public Optional<TenantRow> findTenant(String tenantId) {
    return queryOne("reading tenant " + tenantId, "SELECT tenant_id, created_at FROM tenants WHERE tenant_id = ?",
        ps -> ps.setString(1, tenantId),
        rs -> new TenantRow(rs.getString("tenant_id"), Sql.instant(rs, "created_at")));
  }

  @Override
  public List<String> tenantIds() {
    return query("listing tenants", "SELECT tenant_id FROM tenants ORDER BY tenant_id", ps -> {}, rs -> rs.getString(1));
  }

  @Override
  public long head(String tenantId) {
    return queryOne("reading the head of tenant " + tenantId, "SELECT head FROM tenant_heads WHERE tenant_id = ?",
        ps -> ps.setString(1, tenantId), rs -> rs.getLong(1)).orElse(0L);
  }

  // ---------------------------------------------------------------- enrollment and devices

  @Override
  public Optional<EnrollmentCodeRow> findEnrollmentCode(String codeHash) {
    return queryOne("reading an enrollment code",
        "SELECT " + Sql.CODE_COLUMNS + " FROM enrollment_codes WHERE code_hash = ?",
        ps -> ps.setString(1, codeHash),
        Sql::enrollmentCode);
  }

  @Override
  public Optional<DeviceRow> findDeviceByTokenHash(String tokenHash) {
    return queryOne("reading a device",
        "SELECT " + Sql.DEVICE_COLUMNS + " FROM devices WHERE token_hash = ?",
        ps -> ps.setString(1, tokenHash),
        Sql::device);
  }

  @Override
  public Optional<DeviceRow> findDevice(UUID deviceId) {
    return queryOne("reading device " + deviceId,
        "SELECT " + Sql.DEVICE_COLUMNS + " FROM devices WHERE device_id = ?",
        ps -> ps.setObject(1, deviceId),
        Sql::device);
  }

  /** {@inheritDoc} Ties in enrollment time are broken by device id: one range scan of an index in that order. */
  @Override
  public List<DeviceRow> devices(String tenantId) {
    return query("listing the devices of tenant " + tenantId,
        "SELECT " + Sql.DEVICE_COLUMNS + " FROM devices WHERE tenant_id = ? ORDER BY enrolled_at, device_id",
        ps -> ps.setString(1, tenantId),
        Sql::device);
  }

  // ---------------------------------------------------------------- users and org units

  @Override
  public Optional<UserRow> findUser(String tenantId, String userId) {
    return queryOne("reading user " + userId + " of tenant " + tenantId,
        "SELECT " + Sql.USER_COLUMNS + " FROM users WHERE tenant_id = ? AND user_id = ?",
        ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, userId);
        },
        Sql::user);
  }

  /** {@inheritDoc} In byte order of the ids (the "C" collation), walking the primary key. */
  @Override
  public List<UserRow> users(String tenantId) {
    return query("listing the users of tenant " + tenantId,
        "SELECT " + Sql.USER_COLUMNS + " FROM users WHERE tenant_id = ? ORDER BY user_id",
        ps -> ps.setString(1, tenantId),
        Sql::user);
  }

  /** {@inheritDoc} In byte order of the ids (the "C" collation), walking the primary key. */
  @Override
  public List<OrgUnitRow> orgUnits(String tenantId) {
    return query("listing the org units of tenant " + tenantId,
        "SELECT " + Sql.ORG_UNIT_COLUMNS + " FROM org_units WHERE tenant_id = ? ORDER BY org_unit_id",
        ps -> ps.setString(1, tenantId),
        Sql::orgUnit);
  }

  // ---------------------------------------------------------------- challenges and scope snapshots

  @Override
  public void insertChallenge(ChallengeRow challenge) {
    update("storing a challenge of device " + challenge.deviceId(),
        "INSERT INTO challenges (device_id, challenge, expires_at) VALUES (?, ?, ?)",
        ps -> {
          ps.setObject(1, challenge.deviceId());
          ps.setString(2, challenge.challenge());
          ps.setObject(3, Sql.timestamp(challenge.expiresAt()));
        });
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement: a DELETE of the challenge and of the device's expired ones, returning what it
   * deleted, of which only the challenge asked for counts, and only if it had not expired. Of two
   * concurrent takers the second waits for the first's row lock and then finds the row gone, so it
   * deletes and returns nothing. {@code now} is truncated to the microsecond like every stored
   * instant.
   */
  @Override
  public Optional<ChallengeRow> takeChallenge(UUID deviceId, String challenge, Instant now) {
    return queryOne("taking a challenge of device " + deviceId,
        "WITH taken AS (DELETE FROM challenges WHERE device_id = ? AND (challenge = ? OR expires_at <= ?)"
            + " RETURNING challenge, expires_at)"
            + " SELECT challenge, expires_at FROM taken WHERE challenge = ? AND expires_at > ?",
        ps -> {
          ps.setObject(1, deviceId);
          ps.setString(2, challenge);
          ps.setObject(3, Sql.timestamp(now));
          ps.setString(4, challenge);
          ps.setObject(5, Sql.timestamp(now));
        },
        rs -> new ChallengeRow(deviceId, rs.getString("challenge"), Sql.instant(rs, "expires_at")));
  }

  @Override
  public void putScopeSnapshot(String tenantId, String snapshotId, Set<String> keys) {
    // Sorted, so that equal sets are stored alike.
    String[] sorted = new TreeSet<>(keys).toArray(String[]::new);
    update("storing scope snapshot " + snapshotId + " of tenant " + tenantId,
        "INSERT INTO scope_snapshots (tenant_id, snapshot_id, keys) VALUES (?, ?, ?::text[]) ON CONFLICT DO NOTHING",
        ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, snapshotId);
          ps.setArray(3, Sql.array(ps.getConnection(), "text", sorted));
        });
  }

  @Override
  public Optional<Set<String>> scopeSnapshot(String tenantId, String snapshotId) {
    return queryOne("reading scope snapshot " + snapshotId + " of tenant " + tenantId,
        "SELECT keys FROM scope_snapshots WHERE tenant_id = ? AND snapshot_id = ?",
        ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, snapshotId);
        },
        rs -> Set.copyOf(Sql.strings(rs, "keys")));
  }

  // ---------------------------------------------------------------- sync times

  @Override
  public void markPulled(String tenantId, UUID deviceId, Instant at) {
    // Never backwards: two concurrent pulls of one device may finish in either order. The time is
    // bookkeeping, not data anyone was promised: its commit does not wait for the WAL flush
    // (set_config(..., true) is SET LOCAL for this statement's own transaction). Every page of a
    // pull records it, and waiting for an fsync each time was a fifth of an initial sync's time.
    update("recording the pull time of device " + deviceId,
        "UPDATE devices SET last_pull_at = ? FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async"
            + " WHERE device_id = ? AND tenant_id = ? AND (last_pull_at IS NULL OR last_pull_at < ?)",
        ps -> {
          ps.setObject(1, Sql.timestamp(at));
          ps.setObject(2, deviceId);
          ps.setString(3, tenantId);
          ps.setObject(4, Sql.timestamp(at));
        });
  }

  // ---------------------------------------------------------------- settings

  @Override
  public Optional<String> setting(String key) {
    return queryOne("reading setting " + key, "SELECT value FROM settings WHERE key = ?",
        ps -> ps.setString(1, key), rs -> rs.getString(1));
  }

  @Override
  public void putSetting(String key, String value) {
    update("storing setting " + key,
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        ps -> {
          ps.setString(1, key);
          ps.setString(2, value);
        });
  }

  // ---------------------------------------------------------------- writes and the feed

  /**
   * {@inheritDoc}
   *
   * <p>The first statement locks the tenant's counter row ({@code SELECT head ... FOR UPDATE}) and
   * the lock is held until commit. That is the whole gap-free argument: a second writer of the
   * tenant blocks on the row until the first has committed (and, in PostgreSQL, become visible to
   * new snapshots, which happens before its locks are released), then reads the head the first
   * left. Sequence numbers are therefore handed out in commit order; a pull that has seen seq N can
   * never later meet a commit numbered N or below. Numbers drawn from a sequence object would not
   * have this property: they are taken before commit and commit out of order.
   *
   * <p>Exceptions thrown by {@code work} roll the transaction back and propagate unchanged; a
   * failing statement rolls back and surfaces as {@link StoreUnavailableException} (or {@link
   * IllegalStateException} for a constraint violation, which is a bug rather than an outage).
   */
  @Override
  public <T> T write(String tenantId, Function<WriteTx, T> work) {
    Objects.requireNonNull(work, "work");
    String what = "write transaction of tenant " + tenantId;
    // The row lock below is what orders commits, across every server instance. This in-process
    // gate only keeps this instance's writers of one tenant from each holding a pooled
    // connection while they queue for that row lock, which would starve pulls of connections.
    ReentrantLock gate = tenantGates.computeIfAbsent(tenantId, t -> new ReentrantLock(true));
    gate.lock();
    Connection c;
    try {
      c = connect(what);
    } catch (RuntimeException e) {
      gate.unlock();
      throw e;
    }
    long seqs;
    T result;
    try {
      try {
        c.setAutoCommit(false);
        PostgresWriteTx tx = lockHead(c, tenantId);
        result = work.apply(tx);
        if (tx.notice() != null) {
          // Stamped as the commit is sent: the notice travels with it (NOTIFY is delivered on commit).
          commits.send(c, tx.notice().committedNow());
        }
        c.commit();
        seqs = tx.advanced();
      } catch (SQLException e) {
        rollback(c, e);
        throw Sql.failure(what, e);
      } catch (RuntimeException | Error e) {
        rollback(c, e);
        throw e;
      }
    } finally {
      release(c);
      gate.unlock();
    }
    firstStatistics.committed(seqs, dataSource);
    return result;
  }

  /**
   * Locks the tenant's counter row and opens the transaction on it. The same statement reads the
   * audit chain's head, which lives on that row, so {@link WriteTx#auditHead} costs nothing more.
   */
  private static PostgresWriteTx lockHead(Connection c, String tenantId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT head, audit_seq, audit_hash, watermark FROM tenant_heads WHERE tenant_id = ? FOR UPDATE")) {
      ps.setString(1, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          throw new IllegalArgumentException("no tenant '" + tenantId + "'");
        }
        return new PostgresWriteTx(c, tenantId, rs.getLong(1), new AuditHead(rs.getLong(2), rs.getString(3)), rs.getLong(4));
      }
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement, so one snapshot: the page of rows, the page of moves (each joined to its
   * record's scope key now) and the head, told apart by a {@code part} column of a UNION ALL. Key
   * sets travel as {@code text[]} parameters, never as SQL text. The moves are not queried at all
   * when no from-key is asked for. A tenant that does not exist has nothing and a head of 0.
   */
  @Override
  public PullPage pull(String tenantId, PullQuery q) {
    int limit = q.limit();
    if (limit < 1) {
      throw new IllegalArgumentException("limit must be at least 1, got " + limit);
    }
    List<Param> params = new ArrayList<>();
    String[] collections = q.collections().toArray(String[]::new);
    // The feed never sends field clocks: they are not read.
    StringBuilder sql = new StringBuilder("WITH r AS (SELECT collection, record_id, version, deleted, data, seq, updated_at, scope_key"
        + " FROM records WHERE tenant_id = ? AND seq > ?");
    params.add((ps, i) -> ps.setString(i, tenantId));
    params.add((ps, i) -> ps.setLong(i, q.afterSeq()));
    sql.append(collectionFilter("collection", collections, params));
    q.visibleKeys().ifPresent(keys -> {
      // A present but empty set matches no scoped row: "= ANY('{}')" is false.
      String[] visible = keys.toArray(String[]::new);
      sql.append(q.includeUnscoped() ? " AND (scope_key = ANY(?::text[]) OR scope_key IS NULL)" : " AND scope_key = ANY(?::text[])");
      params.add((ps, i) -> ps.setArray(i, Sql.array(ps.getConnection(), "text", visible)));
    });
    // One row more than asked for tells whether there is more, without a second query.
    sql.append(" ORDER BY seq LIMIT ?)");
    params.add((ps, i) -> ps.setLong(i, limit + 1L));
    boolean withMoves = !q.moveFromKeys().isEmpty();
    if (withMoves) {
      String[] fromKeys = q.moveFromKeys().toArray(String[]::new);
      sql.append(", m AS (SELECT mv.seq, mv.collection, mv.record_id, mv.from_key, cur.scope_key FROM scope_moves mv"
          + " LEFT JOIN records cur ON cur.tenant_id = mv.tenant_id AND cur.collection = mv.collection AND cur.record_id = mv.record_id"
          + " WHERE mv.tenant_id = ? AND mv.seq > ?");
      params.add((ps, i) -> ps.setString(i, tenantId));
      params.add((ps, i) -> ps.setLong(i, q.afterSeq()));
      sql.append(collectionFilter("mv.collection", collections, params));
      sql.append(" AND mv.from_key = ANY(?::text[]) ORDER BY mv.seq, mv.collection, mv.record_id, mv.from_key LIMIT ?)");
      params.add((ps, i) -> ps.setArray(i, Sql.array(ps.getConnection(), "text", fromKeys)));
      params.add((ps, i) -> ps.setLong(i, limit + 1L));
    }
    // The data as text: its bytes are what the feed copies into its pages (text's binary form is
    // its text, so they are the same however the driver is asked to transfer it).
    sql.append(" SELECT 0 AS part, collection, record_id, version, deleted, data::text AS data, seq, updated_at, NULL::jsonb AS field_hlc,"
        + " scope_key,"
        + " NULL::text AS from_key FROM r");
    if (withMoves) {
      sql.append(" UNION ALL SELECT 1, collection, record_id, NULL, NULL, NULL, seq, NULL, NULL, scope_key, from_key FROM m");
    }
    // No ORDER BY over the union: it made PostgreSQL sort every page's rows, data and all, after an
    // index scan that had already read them in seq order. The parts are told apart by "part" and
    // each is put in order below (in the order it almost always arrives in, which costs nothing).
    sql.append(" UNION ALL SELECT 2, NULL, NULL, NULL, NULL, NULL, head, NULL, NULL, NULL, NULL FROM tenant_heads WHERE tenant_id = ?");
    params.add((ps, i) -> ps.setString(i, tenantId));

    List<PulledRecord> rows = new ArrayList<>();
    List<MovedRecord> moves = new ArrayList<>();
    long[] head = {0};
    query("pulling changes of tenant " + tenantId, sql.toString(),
        ps -> {
          for (int i = 0; i < params.size(); i++) {
            params.get(i).set(ps, i + 1);
          }
        },
        rs -> {
          // Columns by position (Sql.PULL_*): looking each one up by name was a sixth of reading a page.
          switch (rs.getInt(Sql.PULL_PART)) {
            case 0 -> rows.add(Sql.pulledRecord(rs));
            case 1 -> moves.add(new MovedRecord(new ScopeMove(rs.getLong("seq"), rs.getString("collection"),
                rs.getObject("record_id", UUID.class), rs.getString("from_key")), Optional.ofNullable(rs.getString("scope_key"))));
            default -> head[0] = rs.getLong(Sql.PULL_SEQ);
          }
          return Boolean.TRUE;
        });
    rows.sort(java.util.Comparator.comparingLong(PulledRecord::seq));
    moves.sort(java.util.Comparator.comparingLong((MovedRecord m) -> m.move().seq()).thenComparing(m -> m.move().collection())
        .thenComparing(m -> m.move().recordId().toString()).thenComparing(m -> m.move().fromKey()));
    boolean hasMore = rows.size() > limit || moves.size() > limit;
    return new PullPage(rows.subList(0, Math.min(limit, rows.size())), moves.subList(0, Math.min(limit, moves.size())), hasMore,
        head[0]);
  }

  /**
   * The collection condition of a pull: none for every collection; "=" for one, so the planner can
   * walk (tenant_id, collection, seq) in order; an array for several.
   */
  private static String collectionFilter(String column, String[] collections, List<Param> params) {
    if (collections.length == 0) {
      return "";
    }
    if (collections.length == 1) {
      params.add((ps, i) -> ps.setString(i, collections[0]));
      return " AND " + column + " = ?";
    }
    params.add((ps, i) -> ps.setArray(i, Sql.array(ps.getConnection(), "text", collections)));
    return " AND " + column + " = ANY(?::text[])";
  }

  /** One positional parameter of a statement built piece by piece. */
  @FunctionalInterface
  private interface Param {
    void set(PreparedStatement ps, int index) throws SQLException;
  }

  /**
   * {@inheritDoc}
   *
   * <p>A READ ONLY transaction at REPEATABLE READ on one pooled connection: every read of {@code
   * work} sees the snapshot taken by the first, which also reads the audit head and proves the
   * tenant exists. It takes no lock that blocks writers. The {@link ReadTx} must not be used after
   * {@code work} returns.
   */
  @Override
  public <T> T read(String tenantId, Function<ReadTx, T> work) {
    Objects.requireNonNull(work, "work");
    String what = "read transaction of tenant " + tenantId;
    Connection c = connect(what);
    try {
      PostgresReadTx tx = null;
      try {
        c.setAutoCommit(false);
        try (Statement st = c.createStatement()) {
          // Must come first in the transaction (the driver sends BEGIN with it).
          st.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
        }
        tx = PostgresReadTx.open(c, tenantId);
        T result = work.apply(tx);
        c.commit();
        return result;
      } catch (SQLException e) {
        rollback(c, e);
        throw Sql.failure(what, e);
      } catch (RuntimeException | Error e) {
        rollback(c, e);
        throw e;
      } finally {
        if (tx != null) {
          tx.close();
        }
      }
    } finally {
      release(c);
    }
  }

  /** {@inheritDoc} One statement, a range scan of the (tenant_id, collection, record_id, seq) index. */
  @Override
  public List<LoggedMutation> recordLog(String tenantId, RecordKey key, int limit) {
    if (limit < 0) {
      throw new IllegalArgumentException("limit must not be negative, got " + limit);
    }
    if (limit == 0) {
      return List.of();
    }
    return query("reading the log of record " + key.collection() + "/" + key.recordId() + " of tenant " + tenantId,
        "SELECT " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND collection = ? AND record_id = ?"
            + " ORDER BY seq LIMIT ?",
        ps -> {
          ps.setString(1, tenantId);
          ps.setString(2, key.collection());
          ps.setObject(3, key.recordId());
          ps.setInt(4, limit);
        },
        Sql::loggedMutation);
  }

  @Override
  public List<InboxItem> inbox(String tenantId, Optional<String> status, Optional<String> kind, Optional<String> collection, int limit) {
    if (limit < 0) {
      throw new IllegalArgumentException("limit must not be negative, got " + limit);
    }
    if (limit == 0) {
      return List.of();
    }
    List<String> filters = new ArrayList<>();
    StringBuilder sql = new StringBuilder("SELECT " + Sql.INBOX_COLUMNS + " FROM inbox_items WHERE tenant_id = ?");
    status.ifPresent(v -> {
      sql.append(" AND status = ?");
      filters.add(v);
    });
    kind.ifPresent(v -> {
      sql.append(" AND kind = ?");
      filters.add(v);
    });
    collection.ifPresent(v -> {
      sql.append(" AND collection = ?");
      filters.add(v);
    });
    // id breaks ties between items opened by one push (they share created_at): a stable order.
    sql.append(" ORDER BY created_at DESC, id LIMIT ?");
    return query("reading the inbox of tenant " + tenantId, sql.toString(),
        ps -> {
          int i = 1;
          ps.setString(i++, tenantId);
          for (String v : filters) {
            ps.setString(i++, v);
          }
          ps.setInt(i, limit);
        },
        Sql::inboxItem);
  }

  @Override
  public List<OutcomeRow> outcomes(String tenantId, UUID deviceId, long afterSeq, int limit) {
    if (limit < 0) {
      throw new IllegalArgumentException("limit must not be negative, got " + limit);
    }
    if (limit == 0) {
      return List.of();
    }
    // Walks the (tenant_id, device_id, seq) index in order: one range scan, no sort.
    return query("reading the outcomes of device " + deviceId,
        "SELECT " + Sql.OUTCOME_COLUMNS + " FROM outcomes WHERE tenant_id = ? AND device_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        ps -> {
          ps.setString(1, tenantId);
          ps.setObject(2, deviceId);
          ps.setLong(3, afterSeq);
          ps.setInt(4, limit);
        },
        Sql::outcome);
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement, a range scan of the {@code received_at} index over the holds older than
   * {@code cutoff} only (normally few: most gaps fill within seconds). Sorted by tenant and device,
   * so a sweeper walks them in a stable order. The cutoff is truncated to the microsecond like every
   * stored instant; a hold is therefore never reported before its time (only one received within
   * the cutoff's own microsecond waits for the next sweep).
   */
  @Override
  public List<DeviceKey> devicesWithHoldsBefore(Instant cutoff) {
    return query("finding devices with holds before " + cutoff,
        "SELECT DISTINCT tenant_id, device_id FROM held_mutations WHERE received_at < ? ORDER BY tenant_id, device_id",
        ps -> ps.setObject(1, Sql.timestamp(cutoff)),
        rs -> new DeviceKey(rs.getString("tenant_id"), rs.getObject("device_id", UUID.class)));
  }

  @Override
  public Optional<StoredRecord> findRecord(String tenantId, RecordKey key) {
    // Two primary-key probes: the projection, then the graveyard of compacted tombstones.
    return queryOne("reading record " + key.collection() + "/" + key.recordId() + " of tenant " + tenantId,
        "SELECT " + Sql.RECORD_COLUMNS + " FROM records WHERE tenant_id = ? AND collection = ? AND record_id = ?"
            + " UNION ALL SELECT " + Sql.GRAVE_COLUMNS + " FROM graveyard WHERE tenant_id = ? AND collection = ? AND record_id = ? LIMIT 1",
        ps -> {
          for (int i = 0; i < 2; i++) {
            ps.setString(3 * i + 1, tenantId);
            ps.setString(3 * i + 2, key.collection());
            ps.setObject(3 * i + 3, key.recordId());
          }
        },
        Sql::storedRecord);
  }

  @Override
  public FeedBounds feedBounds(String tenantId) {
    return queryOne("reading the feed bounds of tenant " + tenantId, "SELECT head, watermark FROM tenant_heads WHERE tenant_id = ?",
        ps -> ps.setString(1, tenantId), rs -> new FeedBounds(rs.getLong(1), rs.getLong(2))).orElse(new FeedBounds(0, 0));
  }

  @Override
  public long watermark(String tenantId) {
    return queryOne("reading the compaction watermark of tenant " + tenantId, "SELECT watermark FROM tenant_heads WHERE tenant_id = ?",
        ps -> ps.setString(1, tenantId), rs -> rs.getLong(1)).orElse(0L);
  }

  @Override
  public int prunePublishedEvents(Instant cutoff, int limit) {
    return update("pruning published domain events", "DELETE FROM domain_events WHERE ctid IN (SELECT ctid FROM domain_events"
        + " WHERE published_at IS NOT NULL AND published_at < ? LIMIT ?)", ps -> {
          ps.setObject(1, Sql.timestamp(cutoff));
          ps.setInt(2, limit);
        });
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement: each filter is {@code data ->> ? = ?}, the field name bound as a parameter
   * like its value (field names are user input and never become SQL text). {@code ->>} yields a
   * string field as the string and any other JSON value as jsonb's text of it (numbers as stored,
   * e.g. {@code 12.50}; objects and arrays in jsonb's normal form); a JSON {@code null} or a
   * missing field yields SQL NULL and so never matches.
   *
   * <p>The primary key {@code (tenant_id, collection, record_id)} serves the order and the {@code
   * after} cursor: a range scan in record-id order that filters as it walks and stops at the
   * limit. There is no index on the data; a very selective filter over a large collection
   * therefore reads up to the whole collection. Record ids are ordered as PostgreSQL orders uuid:
   * by their bytes unsigned, which is their text order.
   */
  @Override
  public List<StoredRecord> listRecords(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after,
      int limit) {
    Sql.RecordsByFields q = Sql.RecordsByFields.of(tenantId, collection, equals, after, limit);
    if (q.empty()) {
      return List.of();
    }
    return query("listing records of " + collection + " of tenant " + tenantId, q.sql(), q::bind, Sql::storedRecord);
  }

  @Override
  public List<org.civicsync.server.store.OutboxEvent> unpublishedEvents(int limit) {
    return query("reading the outbox",
        "SELECT tenant_id, seq, event_id, subject, payload, created_at, attempts FROM domain_events WHERE published_at IS NULL"
            // By seq within a tenant, never by time: instances' clocks may disagree, seq cannot.
            + " ORDER BY tenant_id, seq LIMIT ?",
        ps -> ps.setInt(1, limit),
        rs -> new org.civicsync.server.store.OutboxEvent(rs.getString(1), rs.getLong(2), rs.getObject(3, UUID.class), rs.getString(4),
            rs.getString(5), rs.getObject(6, java.time.OffsetDateTime.class).toInstant(), rs.getInt(7)));
  }

  @Override
  public void markPublished(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, Instant at) {
    updateEvents("marking events published", "UPDATE domain_events d SET published_at = ? FROM unnest(?::text[], ?::bigint[]) AS k(tenant_id, seq)"
        + " WHERE d.tenant_id = k.tenant_id AND d.seq = k.seq AND d.published_at IS NULL", events,
        ps -> ps.setObject(1, java.time.OffsetDateTime.ofInstant(at, java.time.ZoneOffset.UTC)));
  }

  @Override
  public void markPublishFailed(java.util.Collection<org.civicsync.server.store.OutboxEvent> events, String error) {
    updateEvents("counting a failed publish", "UPDATE domain_events d SET attempts = attempts + 1, last_error = ?"
        + " FROM unnest(?::text[], ?::bigint[]) AS k(tenant_id, seq) WHERE d.tenant_id = k.tenant_id AND d.seq = k.seq", events,
        ps -> ps.setString(1, error));
  }

  private void updateEvents(String what, String sql, java.util.Collection<org.civicsync.server.store.OutboxEvent> events, Binder first) {
    if (events.isEmpty()) {
      return;
    }
    update(what, sql, ps -> {
      first.bind(ps);
      Connection c = ps.getConnection();
      ps.setArray(2, Sql.array(c, "text", events.stream().map(org.civicsync.server.store.OutboxEvent::tenantId).toArray(String[]::new)));
      ps.setArray(3, Sql.array(c, "int8", events.stream().map(org.civicsync.server.store.OutboxEvent::seq).toArray(Long[]::new)));
    });
  }

  @Override
  public Optional<PoolStats> poolStats() {
    if (!(pool instanceof com.zaxxer.hikari.HikariDataSource h)) {
      return Optional.empty();
    }
    return Optional.ofNullable(h.getHikariPoolMXBean()).map(m -> new PoolStats(m.getActiveConnections(), m.getIdleConnections(),
        m.getTotalConnections(), h.getMaximumPoolSize(), m.getThreadsAwaitingConnection()));
  }

  @Override
  public Waiting waiting() {
    return query("counting what waits", "SELECT (SELECT count(*) FROM held_mutations), (SELECT count(*) FROM inbox_items WHERE status = 'open')",
        ps -> { }, rs -> new Waiting(rs.getLong(1), rs.getLong(2))).get(0);
  }

  @Override
  public EventBacklog eventBacklog() {
    return query("measuring the outbox", "SELECT count(*), min(created_at) FROM domain_events WHERE published_at IS NULL", ps -> { },
        rs -> new EventBacklog(rs.getLong(1), Optional.ofNullable(rs.getObject(2, java.time.OffsetDateTime.class)).map(java.time.OffsetDateTime::toInstant)))
        .get(0);
  }

  /**
   * A session-level advisory lock on a connection of its own, held for as long as this instance
   * leads: PostgreSQL releases it when the session ends, so an instance that dies or loses its
   * connection lets another take over.
   */
  @Override
  public Optional<Leadership> tryLead(String role) {
    Connection c = listenOn.get();
    try {
      boolean got;
      try (PreparedStatement ps = c.prepareStatement("SELECT pg_try_advisory_lock(hashtextextended(?, 0))")) {
        ps.setString(1, "civicsync:" + schema + ":" + role);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          got = rs.getBoolean(1);
        }
      }
      if (!got) {
        c.close();
        return Optional.empty();
      }
      return Optional.of(new Leadership() {
        @Override
        public boolean held() {
          try {
            return c.isValid(2);
          } catch (SQLException e) {
            return false;
          }
        }

        @Override
        public void close() {
          // Unlock before closing: a pooled connection must not carry the lock back into the pool.
          try (Statement st = c.createStatement()) {
            st.execute("SELECT pg_advisory_unlock_all()");
          } catch (SQLException e) {
            LOG.debug("unlocking the leader connection", e);
          }
          try {
            c.close();
          } catch (SQLException e) {
            LOG.debug("closing the leader connection", e);
          }
        }
      });
    } catch (SQLException e) {
      try {
        c.close();
      } catch (SQLException ignored) {
        // already broken
      }
      throw Sql.failure("trying to lead " + role, e);
    }
  }

  @Override
  public AutoCloseable onCommit(java.util.function.Consumer<org.civicsync.server.store.CommitNotice> listener) {
    return commits.subscribe(listener);
  }

  @Override
  public org.civicsync.server.store.TenantCounts counts(String tenantId, Instant since) {
    List<org.civicsync.server.store.TenantCounts.LogCount> log = query("counting the event log of tenant " + tenantId,
        "SELECT device_id, status, (result::jsonb) -> 'error' ->> 'code', note IS NOT NULL, count(*) FROM mutation_log"
            + " WHERE tenant_id = ? AND received_at >= ? GROUP BY 1, 2, 3, 4",
        ps -> {
          ps.setString(1, tenantId);
          ps.setObject(2, java.time.OffsetDateTime.ofInstant(since, java.time.ZoneOffset.UTC));
        },
        rs -> new org.civicsync.server.store.TenantCounts.LogCount(rs.getObject(1, UUID.class), rs.getString(2),
            Optional.ofNullable(rs.getString(3)), rs.getBoolean(4), rs.getLong(5)));
    List<org.civicsync.server.store.TenantCounts.HeldCount> held = query("counting held mutations of tenant " + tenantId,
        "SELECT device_id, count(*) FROM held_mutations WHERE tenant_id = ? GROUP BY device_id",
        ps -> ps.setString(1, tenantId),
        rs -> new org.civicsync.server.store.TenantCounts.HeldCount(rs.getObject(1, UUID.class), rs.getLong(2)));
    List<org.civicsync.server.store.TenantCounts.InboxCount> inbox = query("counting open inbox items of tenant " + tenantId,
        "SELECT device_id, kind, count(*) FROM inbox_items WHERE tenant_id = ? AND status = 'open' GROUP BY device_id, kind",
        ps -> ps.setString(1, tenantId),
        rs -> new org.civicsync.server.store.TenantCounts.InboxCount(Optional.ofNullable(rs.getObject(1, UUID.class)),
            rs.getString(2), rs.getLong(3)));
    List<org.civicsync.server.store.TenantCounts.TrafficCount> traffic = query("reading the traffic of tenant " + tenantId,
        "SELECT device_id, sum(bytes_in), sum(bytes_out) FROM device_traffic WHERE tenant_id = ? AND day >= ? GROUP BY device_id",
        ps -> {
          ps.setString(1, tenantId);
          ps.setObject(2, since.atZone(java.time.ZoneOffset.UTC).toLocalDate());
        },
        rs -> new org.civicsync.server.store.TenantCounts.TrafficCount(rs.getObject(1, UUID.class), rs.getLong(2), rs.getLong(3)));
    return new org.civicsync.server.store.TenantCounts(log, held, inbox, traffic);
  }

  @Override
  public void addTraffic(java.util.Collection<org.civicsync.server.store.DeviceTraffic> traffic) {
    if (traffic.isEmpty()) {
      return;
    }
    List<org.civicsync.server.store.DeviceTraffic> rows = List.copyOf(traffic);
    update("adding device traffic", "INSERT INTO device_traffic (tenant_id, device_id, day, bytes_in, bytes_out)"
        + " SELECT * FROM unnest(?::text[], ?::uuid[], ?::date[], ?::bigint[], ?::bigint[])"
        + " ON CONFLICT (tenant_id, device_id, day) DO UPDATE SET bytes_in = device_traffic.bytes_in + excluded.bytes_in,"
        + " bytes_out = device_traffic.bytes_out + excluded.bytes_out", ps -> {
      Connection c = ps.getConnection();
      ps.setArray(1, Sql.array(c, "text", rows.stream().map(org.civicsync.server.store.DeviceTraffic::tenantId).toArray(String[]::new)));
      ps.setArray(2, Sql.array(c, "uuid", rows.stream().map(org.civicsync.server.store.DeviceTraffic::deviceId).toArray(UUID[]::new)));
      ps.setArray(3, Sql.array(c, "text", rows.stream().map(t -> t.day().toString()).toArray(String[]::new)));
      ps.setArray(4, Sql.array(c, "int8", rows.stream().map(org.civicsync.server.store.DeviceTraffic::bytesIn).toArray(Long[]::new)));
      ps.setArray(5, Sql.array(c, "int8", rows.stream().map(org.civicsync.server.store.DeviceTraffic::bytesOut).toArray(Long[]::new)));
    });
  }

  @Override
  public void ping() {
    Connection c = connect("ping");
    try (PreparedStatement ps = c.prepareStatement("SELECT 1")) {
      ps.setQueryTimeout(PING_TIMEOUT_SECONDS);
      try (ResultSet rs = ps.executeQuery()) {
        rs.next();
      }
    } catch (SQLException e) {
      throw new StoreUnavailableException("PostgreSQL does not answer: " + e.getMessage(), e);
    } finally {
      release(c);
    }
  }

  /** Closes the pool; further calls fail with {@link StoreUnavailableException}. Idempotent. */
  @Override
  public void close() {
    commits.close();
    try {
      pool.close();
    } catch (Exception e) {
      LOG.warn("closing the PostgreSQL pool failed", e);
    }
  }

  // ---------------------------------------------------------------- JDBC plumbing

  @FunctionalInterface
  private interface Binder {
    void bind(PreparedStatement ps) throws SQLException;
  }

  @FunctionalInterface
  private interface RowMapper<T> {
    T map(ResultSet rs) throws SQLException;
  }

  private Connection connect(String what) {
    try {
      return dataSource.getConnection();
    } catch (SQLException e) {
      throw new StoreUnavailableException(what + ": no connection to PostgreSQL: " + e.getMessage(), e);
    }
  }

  private static void release(Connection c) {
    try {
      c.close();
    } catch (SQLException e) {
      // The outcome is already decided (committed or rolled back); the pool discards a broken
      // connection by itself, so a failing close must not turn a success into an error.
      LOG.warn("returning a PostgreSQL connection to the pool failed", e);
    }
  }

  private static void rollback(Connection c, Throwable cause) {
    try {
      c.rollback();
    } catch (SQLException e) {
      cause.addSuppressed(e);
    }
  }

  private int update(String what, String sql, Binder binder) {
    Connection c = connect(what);
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      binder.bind(ps);
      return ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure(what, e);
    } finally {
      release(c);
    }
  }

  private <T> List<T> query(String what, String sql, Binder binder, RowMapper<T> mapper) {
    Connection c = connect(what);
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      binder.bind(ps);
      List<T> out = new ArrayList<>();
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(mapper.map(rs));
        }
      }
      return out;
    } catch (SQLException e) {
      throw Sql.failure(what, e);
    } finally {
      release(c);
    }
  }

  private <T> Optional<T> queryOne(String what, String sql, Binder binder, RowMapper<T> mapper) {
    List<T> rows = query(what, sql, binder, mapper);
    return rows.isEmpty() ? Optional.empty() : Optional.of(rows.get(0));
  }

  private static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null && t.getCause() != t) {
      t = t.getCause();
    }
    return t.getMessage();
  }
}
