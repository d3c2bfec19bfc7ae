package org.civicsync.server.store.postgres;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.DeviceQueue;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.RowWork;
import org.civicsync.server.store.ScopeMove;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.UserRow;
import org.civicsync.server.store.WriteTx;

/**
 * A write transaction on one connection whose tenant_heads row is already locked. Every batch
 * method is one statement with array parameters (a push of 1,000 mutations costs the same handful
 * of round trips as a push of one).
 */
final class PostgresWriteTx implements WriteTx {
  private static final String FIND_LOGGED =
      "SELECT mutation_id, " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND mutation_id = ANY(?::uuid[])";

  // Lookups by a list of keys are written as a LATERAL subquery per key that PostgreSQL cannot
  // flatten into a join (LIMIT / OFFSET 0): each key is one probe of the primary key, whatever
  // the planner believes about the table. As plain joins, their plans depended on statistics:
  // without them (a table never analysed, autovacuum off) the planner hash-joined the keys
  // against every row of the tenant, and a 200,000-mutation benchmark ingest slowed to a few
  // hundred mutations per second, each push scanning the projection and the claims.
  static final String FIND_RECORDS =
      "SELECT r.collection, r.record_id, r.version, r.deleted, r.data, r.seq, r.updated_at, r.field_hlc, r.scope_key"
          + " FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)"
          + " CROSS JOIN LATERAL (SELECT * FROM records x WHERE x.tenant_id = ? AND x.collection = k.collection"
          + " AND x.record_id = k.record_id LIMIT 1) r";

  // Once the tenant has compacted: the graveyard answers the keys the projection lacks, in the
  // same statement.
  private static final String FIND_RECORDS_AND_GRAVES = FIND_RECORDS
      + " UNION ALL SELECT g.collection, g.record_id, g.version, true, NULL::jsonb, g.seq, g.updated_at, g.field_hlc, g.scope_key"
      + " FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)"
      + " CROSS JOIN LATERAL (SELECT * FROM graveyard x WHERE x.tenant_id = ? AND x.collection = k.collection"
      + " AND x.record_id = k.record_id LIMIT 1) g";

  // The tombstones of a seq range leave the projection (and their claims, if any) for the graveyard.
  private static final String BURY =
      "WITH gone AS (DELETE FROM records WHERE tenant_id = ? AND seq > ? AND seq <= ? AND deleted RETURNING *),"
          + " released AS (DELETE FROM rule_claims c USING gone WHERE c.tenant_id = gone.tenant_id AND c.collection = gone.collection"
          + " AND c.record_id = gone.record_id),"
          + " buried AS (INSERT INTO graveyard (tenant_id, collection, record_id, version, seq, updated_at, field_hlc, scope_key)"
          + " SELECT tenant_id, collection, record_id, version, seq, updated_at, field_hlc, scope_key FROM gone"
          + " ON CONFLICT (tenant_id, collection, record_id) DO UPDATE SET version = excluded.version, seq = excluded.seq,"
          + " updated_at = excluded.updated_at, field_hlc = excluded.field_hlc, scope_key = excluded.scope_key)"
          + " SELECT " + Sql.RECORD_COLUMNS + " FROM gone ORDER BY seq";

  private static final String DROP_MOVES =
      "WITH d AS (DELETE FROM scope_moves WHERE tenant_id = ? AND seq > ? AND seq <= ? RETURNING seq) SELECT coalesce(max(seq), 0) FROM d";

  // A range of the (tenant_id, seq) key; the entry that produced a record's current row shares
  // its seq with that row, which the records' (tenant_id, seq) index finds.
  private static final String SUPERSEDED =
      "SELECT " + Sql.LOG_COLUMNS + " FROM mutation_log l WHERE l.tenant_id = ? AND l.seq > ? AND l.seq <= ?"
          + " AND l.detail_digest IS NOT NULL AND l.compacted_at IS NULL"
          + " AND NOT EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = l.tenant_id AND r.seq = l.seq) ORDER BY l.seq";

  // record_version goes with the after-state: FIND_VERSION must not find a version it cannot return.
  private static final String COMPACT_LOG =
      "UPDATE mutation_log l SET mutation = u.mutation, after_state = NULL, record_version = NULL, compacted_at = u.at"
          + " FROM unnest(?::bigint[], ?::text[], ?::timestamptz[]) AS u(seq, mutation, at) WHERE l.tenant_id = ? AND l.seq = u.seq";

  // Uses the (tenant_id, collection, record_id, record_version) index; versions of a record only
  // increase, so there is at most one entry, and the latest wins should there ever be more.
  private static final String FIND_VERSION =
      "SELECT after_state FROM mutation_log WHERE tenant_id = ? AND collection = ? AND record_id = ? AND record_version = ?"
          + " ORDER BY seq DESC LIMIT 1";

  private static final String APPEND_LOG =
      "INSERT INTO mutation_log (tenant_id, mutation_id, seq, device_id, collection, record_id, op, content_hash,"
          + " mutation, result, status, received_at, record_version, after_state, note, detail_digest)"
          + " SELECT ?, u.* FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::text[], ?::uuid[], ?::text[], ?::text[],"
          + " ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::bigint[], ?::text[], ?::text[], ?::text[]) AS u";

  // Records the transaction knows have no row (see absent): a plain insert. PostgreSQL's ON
  // CONFLICT costs each row an index probe before the insert and a second write of the row's
  // header after it (speculative insertion), about half again a row's cost for nothing here.
  private static final String INSERT_RECORDS =
      "INSERT INTO records (tenant_id, collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key)"
          + " SELECT ?, u.collection, u.record_id, u.version, u.deleted, u.data::jsonb, u.seq, u.updated_at, u.field_hlc::jsonb,"
          + " u.scope_key"
          + " FROM unnest(?::text[], ?::uuid[], ?::bigint[], ?::boolean[], ?::text[], ?::bigint[], ?::timestamptz[], ?::text[],"
          + " ?::text[])"
          + " AS u(collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key)";

  private static final String PUT_RECORDS = INSERT_RECORDS
      + " ON CONFLICT (tenant_id, collection, record_id) DO UPDATE SET version = excluded.version,"
      + " deleted = excluded.deleted, data = excluded.data, seq = excluded.seq, updated_at = excluded.updated_at,"
      + " field_hlc = excluded.field_hlc, scope_key = excluded.scope_key";

  // Items are normally opened without resolved_at and resolution; both are written anyway, so
  // that any item put here reads back as it was given.
  private static final String OPEN_INBOX_ITEMS =
      "INSERT INTO inbox_items (tenant_id, id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at,"
          + " resolved_at, resolution)"
          + " SELECT ?, u.id, u.kind, u.status, u.collection, u.record_id, u.mutation_id, u.device_id, u.detail::jsonb, u.created_at,"
          + " u.resolved_at, u.resolution::jsonb"
          + " FROM unnest(?::uuid[], ?::text[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::timestamptz[],"
          + " ?::timestamptz[], ?::text[])"
          + " AS u(id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at, resolved_at, resolution)";

  private static final String FIND_INBOX_ITEM =
      "SELECT " + Sql.INBOX_COLUMNS + " FROM inbox_items WHERE tenant_id = ? AND id = ?";

  private static final String RESOLVE_INBOX_ITEM =
      "UPDATE inbox_items SET status = 'resolved', resolved_at = ?, resolution = ?::jsonb WHERE tenant_id = ? AND id = ?";

  private static final String APPEND_EVENTS =
      "INSERT INTO domain_events (tenant_id, seq, event_id, subject, payload, created_at)"
          + " SELECT ?, u.seq, u.event_id, u.subject, u.payload, u.created_at"
          + " FROM unnest(?::bigint[], ?::uuid[], ?::text[], ?::text[], ?::timestamptz[]) AS u(seq, event_id, subject, payload, created_at)";

  private static final String APPEND_OUTCOMES =
      "INSERT INTO outcomes (tenant_id, seq, device_id, mutation_id, result, at)"
          + " SELECT ?, u.seq, u.device_id, u.mutation_id, u.result, u.at"
          + " FROM unnest(?::bigint[], ?::uuid[], ?::uuid[], ?::text[], ?::timestamptz[]) AS u(seq, device_id, mutation_id, result, at)";

  // The (tenant_id, mutation_id, seq) index gives each mutation's outcomes in seq order; DISTINCT
  // ON keeps the first row per mutation of the descending order, i.e. the latest outcome.
  private static final String LATEST_OUTCOMES =
      "SELECT DISTINCT ON (mutation_id) mutation_id, result FROM outcomes"
          + " WHERE tenant_id = ? AND mutation_id = ANY(?::uuid[]) ORDER BY mutation_id, seq DESC";

  // One range of the primary key (tenant_id, rule, claim_key, ...) per claim (see FIND_RECORDS
  // for why LATERAL).
  private static final String CLAIM_HOLDERS =
      "SELECT w.rule, w.claim_key, c.record_id FROM unnest(?::text[], ?::text[]) AS w(rule, claim_key)"
          + " CROSS JOIN LATERAL (SELECT x.record_id FROM rule_claims x WHERE x.tenant_id = ? AND x.rule = w.rule"
          + " AND x.claim_key = w.claim_key OFFSET 0) c";

  // Replaces the claims of a set of records in one statement. The records are k (parallel arrays
  // of collection and id; a record with no claims left appears only here), their new claims n.
  // The DELETE drops each record's rows that are not among its new claims, the INSERT adds the new
  // ones it does not hold yet (ON CONFLICT DO NOTHING skips those it keeps). The two touch
  // disjoint rows, so it does not matter that PostgreSQL runs a WITH clause's DELETE and the main
  // INSERT against one snapshot in no defined order; and a record whose claims did not change
  // (most updates) costs no dead tuples or index churn. The DELETE finds the rows through the
  // (tenant_id, collection, record_id) index, one LATERAL probe per record (see FIND_RECORDS),
  // and deletes them by their row ids.
  private static final String PUT_CLAIMS =
      "WITH k AS (SELECT * FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)),"
          + " n AS (SELECT DISTINCT * FROM unnest(?::text[], ?::uuid[], ?::text[], ?::text[]) AS n(collection, record_id, rule, claim_key)),"
          + " released AS (DELETE FROM rule_claims WHERE ctid = ANY (ARRAY(SELECT x.ctid FROM k CROSS JOIN LATERAL"
          + " (SELECT y.ctid, y.collection, y.record_id, y.rule, y.claim_key FROM rule_claims y WHERE y.tenant_id = ?"
          + " AND y.collection = k.collection AND y.record_id = k.record_id OFFSET 0) x WHERE NOT EXISTS (SELECT 1 FROM n"
          + " WHERE n.collection = x.collection AND n.record_id = x.record_id AND n.rule = x.rule AND n.claim_key = x.claim_key))))"
          + " INSERT INTO rule_claims (tenant_id, rule, claim_key, collection, record_id)"
          + " SELECT ?, n.rule, n.claim_key, n.collection, n.record_id FROM n ON CONFLICT DO NOTHING";

  // The claims of records created in this transaction (see bornHere): nothing to release, no
  // conflict to skip (each record's claims are distinct and no other record holds rows of its id).
  private static final String INSERT_CLAIMS =
      "INSERT INTO rule_claims (tenant_id, rule, claim_key, collection, record_id)"
          + " SELECT ?, u.* FROM unnest(?::text[], ?::text[], ?::text[], ?::uuid[]) AS u";

  // The device's progress and its held mutations in one round trip. The one-row driver keeps a
  // row when neither exists; device_progress has at most one row per device (its primary key), so
  // the joins yield one row per held mutation, each carrying the progress (or one row of NULLs
  // besides it when nothing is held). The held rows come from the (tenant_id, device_id,
  // device_seq) index, already in deviceSeq order.
  private static final String DEVICE_QUEUE =
      "SELECT p.progress, h.mutation_id, h.device_id, h.mutation, h.content_hash, h.received_at"
          + " FROM (SELECT 1) AS one"
          + " LEFT JOIN device_progress p ON p.tenant_id = ? AND p.device_id = ?"
          + " LEFT JOIN held_mutations h ON h.tenant_id = ? AND h.device_id = ?"
          + " ORDER BY h.device_seq, h.received_at, h.mutation_id";

  // Never lowers the progress. The WHERE (rather than SET progress = GREATEST(...)) also leaves the
  // row alone when it would not change: no new row version, no WAL.
  private static final String SET_DEVICE_PROGRESS =
      "INSERT INTO device_progress AS p (tenant_id, device_id, progress) VALUES (?, ?, ?)"
          + " ON CONFLICT (tenant_id, device_id) DO UPDATE SET progress = excluded.progress WHERE p.progress < excluded.progress";

  private static final String FIND_HELD =
      "SELECT mutation_id, " + Sql.HELD_COLUMNS + " FROM held_mutations WHERE tenant_id = ? AND mutation_id = ANY(?::uuid[])";

  private static final String HOLD =
      "INSERT INTO held_mutations (tenant_id, mutation_id, device_id, device_seq, mutation, content_hash, received_at)"
          + " SELECT ?, u.mutation_id, u.device_id, u.device_seq, u.mutation, u.content_hash, u.received_at"
          + " FROM unnest(?::uuid[], ?::uuid[], ?::bigint[], ?::text[], ?::text[], ?::timestamptz[])"
          + " AS u(mutation_id, device_id, device_seq, mutation, content_hash, received_at)";

  private static final String RELEASE =
      "DELETE FROM held_mutations WHERE tenant_id = ? AND mutation_id = ANY(?::uuid[])";

  private static final String CLEAR_RECORDS =
      "WITH claims AS (DELETE FROM rule_claims WHERE tenant_id = ?), moves AS (DELETE FROM scope_moves WHERE tenant_id = ?)"
          + " DELETE FROM records WHERE tenant_id = ?";

  private static final String INSERT_ENROLLMENT_CODE =
      "INSERT INTO enrollment_codes (" + Sql.CODE_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)";

  // The check and the increment are one statement; the row stays locked until commit.
  private static final String REDEEM_ENROLLMENT_CODE =
      "UPDATE enrollment_codes SET uses = uses + 1 WHERE code_hash = ? AND tenant_id = ? AND uses < max_uses AND expires_at > ?"
          + " RETURNING " + Sql.CODE_COLUMNS;

  private static final String INSERT_DEVICE =
      "INSERT INTO devices (" + Sql.DEVICE_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

  private static final String RENEW_TOKEN =
      "UPDATE devices SET token_hash = ?, token_expires_at = ? WHERE device_id = ? AND tenant_id = ?";

  // COALESCE keeps the first revocation time; the row count still tells whether the device is
  // this tenant's, in the same statement.
  private static final String REVOKE_DEVICE =
      "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE device_id = ? AND tenant_id = ?";

  private static final String PUT_USER =
      "INSERT INTO users (" + Sql.USER_COLUMNS + ") VALUES (?, ?, ?::text[], ?::text[], ?, ?)"
          + " ON CONFLICT (tenant_id, user_id) DO UPDATE SET roles = excluded.roles, org_units = excluded.org_units,"
          + " created_at = excluded.created_at, updated_at = excluded.updated_at";

  private static final String PUT_ORG_UNIT =
      "INSERT INTO org_units (" + Sql.ORG_UNIT_COLUMNS + ") VALUES (?, ?, ?, ?, ?)"
          + " ON CONFLICT (tenant_id, org_unit_id) DO UPDATE SET parent = excluded.parent, name = excluded.name,"
          + " updated_at = excluded.updated_at";

  // A move given twice (same record, seq and key) is stored once.
  private static final String RECORD_MOVES =
      "INSERT INTO scope_moves (tenant_id, seq, collection, record_id, from_key)"
          + " SELECT ?, u.seq, u.collection, u.record_id, u.from_key"
          + " FROM unnest(?::bigint[], ?::text[], ?::uuid[], ?::text[]) AS u(seq, collection, record_id, from_key)"
          + " ON CONFLICT DO NOTHING";

  // Moves the head on the tenant's counter row (locked by this transaction since its first
  // statement) and inserts the entry, in one statement. The WHERE on the old head makes the insert
  // happen only if the entry really follows it; the caller has already checked that in memory.
  private static final String APPEND_AUDIT =
      "WITH h AS (UPDATE tenant_heads SET audit_seq = ?, audit_hash = ?"
          + " WHERE tenant_id = ? AND audit_seq = ? AND audit_hash = ? RETURNING tenant_id)"
          + " INSERT INTO audit_log (tenant_id, seq, at, content, prev_hash, hash)"
          + " SELECT h.tenant_id, ?::bigint, ?::timestamptz, ?::text, ?::text, ?::text FROM h";

  /** Rows per fetch while streaming the log; bounds memory during a rebuild of any size. */
  private static final int LOG_FETCH_SIZE = 1_000;

  private final Connection c;
  private final String tenantId;
  private final long startHead;
  private long head;
  private AuditHead auditHead;

  /**
   * Keys {@link #findRecords} found no row for, and that this transaction has not written since.
   * While the transaction holds the tenant's counter lock it is the only writer of the tenant's
   * records, so such a key stays absent until {@link #putRecords} or {@link #clearRecords} here:
   * asking again (the write path looks up the records a push creates once to decide, and once more
   * to learn their old scope keys) costs no statement.
   */
  private final Set<RecordKey> absent = new HashSet<>();

  /**
   * Records this transaction created — {@link #findRecords} found no row for them, {@link
   * #putRecords} has written one since — and whose claims it has not put yet. A claim row exists
   * only beside its record's row (both are written together, and cleared together), so these hold
   * none: their claims are plain inserts, with nothing to look up or release first. That is most
   * of a push's claims, and the replacing statement cost about half again as much per row.
   */
  private final Set<RecordKey> bornHere = new HashSet<>();

  private org.civicsync.server.store.CommitNotice notice;

  @Override
  public void announce(org.civicsync.server.store.CommitNotice n) {
    notice = n;
  }

  /** The notice to send just before commit, or null. */
  org.civicsync.server.store.CommitNotice notice() {
    return notice;
  }

  PostgresWriteTx(Connection c, String tenantId, long startHead, AuditHead auditHead, long watermark) {
    this.c = c;
    this.tenantId = tenantId;
    this.startHead = startHead;
    this.head = startHead;
    this.auditHead = auditHead;
    this.watermark = watermark;
  }

  // Read with the counter lock; the graveyard is consulted only once the tenant has compacted.
  private long watermark;

  @Override
  public List<StoredRecord> buryTombstones(long afterSeq, long throughSeq) {
    return inSeqRange(BURY, afterSeq, throughSeq, "moving tombstones to the graveyard", Sql::storedRecord);
  }

  @Override
  public long dropScopeMoves(long afterSeq, long throughSeq) {
    return inSeqRange(DROP_MOVES, afterSeq, throughSeq, "dropping scope moves", rs -> rs.getLong(1)).get(0);
  }

  @Override
  public List<LoggedMutation> supersededLog(long afterSeq, long throughSeq) {
    return inSeqRange(SUPERSEDED, afterSeq, throughSeq, "reading superseded log entries", Sql::loggedMutation);
  }

  private interface Row<T> {
    T map(ResultSet rs) throws SQLException;
  }

  /** The rows of a statement whose parameters are this tenant and a range of seqs, ({@code afterSeq}, {@code throughSeq}]. */
  private <T> List<T> inSeqRange(String sql, long afterSeq, long throughSeq, String what, Row<T> row) {
    List<T> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setString(1, tenantId);
      ps.setLong(2, afterSeq);
      ps.setLong(3, throughSeq);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(row.map(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure(what, e);
    }
    return out;
  }

  @Override
  public void compactLog(List<LoggedMutation> compacted) {
    if (compacted.isEmpty()) {
      return;
    }
    int n = compacted.size();
    Long[] seqs = new Long[n];
    String[] mutations = new String[n];
    String[] at = new String[n];
    for (int i = 0; i < n; i++) {
      LoggedMutation e = compacted.get(i);
      seqs[i] = e.seq();
      mutations[i] = StoreJson.write(e.mutation());
      at[i] = Sql.timestampText(e.compactedAt());
    }
    try (PreparedStatement ps = c.prepareStatement(COMPACT_LOG)) {
      ps.setArray(1, Sql.array(c, "int8", seqs));
      ps.setArray(2, Sql.array(c, "text", mutations));
      ps.setArray(3, Sql.array(c, "text", at));
      ps.setString(4, tenantId);
      if (ps.executeUpdate() != n) {
        throw new IllegalStateException("a compacted log entry is not in the log");
      }
    } catch (SQLException e) {
      throw Sql.failure("compacting log entries", e);
    }
  }

  @Override
  public long watermark() {
    return watermark;
  }

  @Override
  public void raiseWatermark(long seq) {
    if (seq <= watermark) {
      return;
    }
    try (PreparedStatement ps = c.prepareStatement("UPDATE tenant_heads SET watermark = ? WHERE tenant_id = ?")) {
      ps.setLong(1, seq);
      ps.setString(2, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("raising the compaction watermark", e);
    }
    watermark = seq;
  }

  @Override
  public long head() {
    return startHead;
  }

  /** How many sequence numbers this transaction has taken so far. */
  long advanced() {
    return head - startHead;
  }

  @Override
  public Map<UUID, LoggedMutation> findLogged(Collection<UUID> mutationIds) {
    if (mutationIds.isEmpty()) {
      return Map.of();
    }
    Map<UUID, LoggedMutation> out = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(FIND_LOGGED)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds.toArray(UUID[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.put(rs.getObject("mutation_id", UUID.class), Sql.loggedMutation(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the event log", e);
    }
    return out;
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement for the keys not already known to be absent (see {@link #absent}); none when
   * every key is.
   */
  @Override
  public Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys) {
    List<RecordKey> wanted = new ArrayList<>(keys.size());
    for (RecordKey k : keys) {
      if (!absent.contains(k)) {
        wanted.add(k);
      }
    }
    if (wanted.isEmpty()) {
      return new HashMap<>();
    }
    String[] collections = new String[wanted.size()];
    UUID[] ids = new UUID[wanted.size()];
    int i = 0;
    for (RecordKey k : wanted) {
      collections[i] = k.collection();
      ids[i++] = k.recordId();
    }
    Map<RecordKey, StoredRecord> out = new HashMap<>();
    boolean graves = watermark > 0;
    try (PreparedStatement ps = c.prepareStatement(graves ? FIND_RECORDS_AND_GRAVES : FIND_RECORDS)) {
      ps.setArray(1, Sql.array(c, "text", collections));
      ps.setArray(2, Sql.array(c, "uuid", ids));
      ps.setString(3, tenantId);
      if (graves) {
        ps.setArray(4, Sql.array(c, "text", collections));
        ps.setArray(5, Sql.array(c, "uuid", ids));
        ps.setString(6, tenantId);
      }
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          StoredRecord r = Sql.storedRecord(rs);
          out.putIfAbsent(r.key(), r);
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading records", e);
    }
    for (RecordKey k : wanted) {
      if (!out.containsKey(k)) {
        absent.add(k);
      }
    }
    return out;
  }

  @Override
  public Optional<RecordState> findVersion(RecordKey key, long version) {
    try (PreparedStatement ps = c.prepareStatement(FIND_VERSION)) {
      ps.setString(1, tenantId);
      ps.setString(2, key.collection());
      ps.setObject(3, key.recordId());
      ps.setLong(4, version);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(StoreJson.state(rs.getString(1))) : Optional.empty();
      }
    } catch (SQLException e) {
      throw Sql.failure("reading version " + version + " of record " + key.recordId(), e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement (none for a limit of 0), built and bound as {@link
   * PostgresServerStore#listRecords} builds and binds its own, so the two compare alike; it runs
   * on this transaction's connection and so sees the records this transaction has written.
   *
   * @throws IllegalArgumentException for a negative limit
   */
  @Override
  public List<StoredRecord> findByFields(String collection, Map<String, String> equals, int limit) {
    Sql.RecordsByFields q = Sql.RecordsByFields.of(tenantId, collection, equals, Optional.empty(), limit);
    if (q.empty()) {
      return List.of();
    }
    List<StoredRecord> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(q.sql())) {
      q.bind(ps);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(Sql.storedRecord(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("finding records of " + collection + " by field", e);
    }
    return out;
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement per set of field names (a push's lookups usually share one): the lookups'
   * values travel as arrays, each row of them probing the records with the same conditions, order
   * and {@code LIMIT 1} as {@link #findByFields}. A statement per lookup cost a push of 500
   * bookings about 40 round trips inside its tenant's lock, a quarter of the time it held it.
   */
  @Override
  public List<Optional<StoredRecord>> firstByFields(String collection, List<Map<String, String>> lookups) {
    List<Optional<StoredRecord>> out = new ArrayList<>(java.util.Collections.nCopies(lookups.size(), Optional.empty()));
    Map<List<String>, List<Integer>> byFields = new java.util.LinkedHashMap<>();
    for (int i = 0; i < lookups.size(); i++) {
      List<String> fields = new ArrayList<>(new java.util.TreeSet<>(lookups.get(i).keySet()));
      byFields.computeIfAbsent(fields, f -> new ArrayList<>()).add(i);
    }
    for (Map.Entry<List<String>, List<Integer>> group : byFields.entrySet()) {
      List<String> fields = group.getKey();
      List<Integer> at = group.getValue();
      if (fields.isEmpty()) {
        // No condition: the collection's first live record, for each of them.
        Optional<StoredRecord> first = findByFields(collection, Map.of(), 1).stream().findFirst();
        at.forEach(i -> out.set(i, first));
        continue;
      }
      StringBuilder sql = new StringBuilder("SELECT k.i, r.* FROM unnest(?::int[]");
      StringBuilder names = new StringBuilder("i");
      StringBuilder where = new StringBuilder();
      for (int f = 0; f < fields.size(); f++) {
        sql.append(", ?::text[]");
        names.append(", v").append(f);
        where.append(" AND data ->> ?::text = k.v").append(f);
      }
      sql.append(") AS k(").append(names).append(") CROSS JOIN LATERAL (SELECT ").append(Sql.RECORD_COLUMNS)
          .append(" FROM records WHERE tenant_id = ? AND collection = ? AND NOT deleted").append(where)
          .append(" ORDER BY record_id LIMIT 1) r");
      try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
        int p = 1;
        ps.setArray(p++, Sql.array(c, "int4", at.toArray(Integer[]::new)));
        for (String field : fields) {
          String[] values = new String[at.size()];
          for (int j = 0; j < at.size(); j++) {
            values[j] = java.util.Objects.requireNonNull(lookups.get(at.get(j)).get(field), "value of field " + field);
          }
          ps.setArray(p++, Sql.array(c, "text", values));
        }
        ps.setString(p++, tenantId);
        ps.setString(p++, collection);
        for (String field : fields) {
          ps.setString(p++, field);
        }
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.set(rs.getInt(1), Optional.of(Sql.storedRecord(rs)));
          }
        }
      } catch (SQLException e) {
        throw Sql.failure("finding records of " + collection + " by field", e);
      }
    }
    return out;
  }

  @Override
  public void appendLog(List<LoggedMutation> entries) {
    for (LoggedMutation e : entries) {
      if (e.seq() <= startHead) {
        throw new IllegalStateException("log entry " + e.mutation().mutationId() + " has seq " + e.seq()
            + ", not above the head " + startHead + " this transaction started from");
      }
    }
    for (int from = 0; from < entries.size(); from += Sql.CHUNK) {
      appendChunk(entries.subList(from, Math.min(entries.size(), from + Sql.CHUNK)));
    }
  }

  private void appendChunk(List<LoggedMutation> entries) {
    int n = entries.size();
    UUID[] mutationIds = new UUID[n];
    Long[] seqs = new Long[n];
    UUID[] deviceIds = new UUID[n];
    String[] collections = new String[n];
    UUID[] recordIds = new UUID[n];
    String[] ops = new String[n];
    String[] hashes = new String[n];
    String[] mutations = new String[n];
    String[] results = new String[n];
    String[] statuses = new String[n];
    String[] receivedAt = new String[n];
    Long[] recordVersions = new Long[n];
    String[] afterStates = new String[n];
    String[] notes = new String[n];
    String[] detailDigests = new String[n];
    // The rows' text forms on every core (RowWork): the tenant's lock is held while they are made.
    RowWork.each(n, i -> {
      LoggedMutation e = entries.get(i);
      detailDigests[i] = e.detailDigest();
      mutationIds[i] = e.mutation().mutationId();
      seqs[i] = e.seq();
      deviceIds[i] = e.deviceId();
      collections[i] = e.mutation().collection();
      recordIds[i] = e.mutation().recordId();
      ops[i] = e.mutation().op().wire();
      hashes[i] = e.contentHash();
      mutations[i] = StoreJson.write(e.mutation());
      results[i] = StoreJson.write(e.result());
      statuses[i] = e.result().status().wire();
      receivedAt[i] = Sql.timestampText(e.receivedAt());
      if (e.after() != null) {
        recordVersions[i] = e.after().version();
        afterStates[i] = StoreJson.write(Sql.stored(e.after()));
      }
      if (e.note() != null) {
        notes[i] = StoreJson.write(e.note());
      }
    });
    try (PreparedStatement ps = c.prepareStatement(APPEND_LOG)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds));
      ps.setArray(3, Sql.array(c, "int8", seqs));
      ps.setArray(4, Sql.array(c, "uuid", deviceIds));
      ps.setArray(5, Sql.array(c, "text", collections));
      ps.setArray(6, Sql.array(c, "uuid", recordIds));
      ps.setArray(7, Sql.array(c, "text", ops));
      ps.setArray(8, Sql.array(c, "text", hashes));
      ps.setArray(9, Sql.array(c, "text", mutations));
      ps.setArray(10, Sql.array(c, "text", results));
      ps.setArray(11, Sql.array(c, "text", statuses));
      ps.setArray(12, Sql.array(c, "text", receivedAt));
      ps.setArray(13, Sql.array(c, "int8", recordVersions));
      ps.setArray(14, Sql.array(c, "text", afterStates));
      ps.setArray(15, Sql.array(c, "text", notes));
      ps.setArray(16, Sql.array(c, "text", detailDigests));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("appending to the event log", e);
    }
  }

  @Override
  public void putRecords(Collection<StoredRecord> records) {
    // One INSERT ... ON CONFLICT DO UPDATE may not touch a row twice; a later row for the same key
    // replaces an earlier one, as if they had been put one after another.
    Map<RecordKey, StoredRecord> latest = new LinkedHashMap<>();
    for (StoredRecord r : records) {
      latest.remove(r.key());
      latest.put(r.key(), r);
    }
    List<StoredRecord> fresh = new ArrayList<>();
    List<StoredRecord> replacing = new ArrayList<>();
    for (StoredRecord r : latest.values()) {
      if (absent.remove(r.key())) {
        bornHere.add(r.key());
        fresh.add(r);
      } else {
        replacing.add(r);
      }
    }
    for (int from = 0; from < fresh.size(); from += Sql.CHUNK) {
      putChunk(INSERT_RECORDS, fresh.subList(from, Math.min(fresh.size(), from + Sql.CHUNK)));
    }
    for (int from = 0; from < replacing.size(); from += Sql.CHUNK) {
      putChunk(PUT_RECORDS, replacing.subList(from, Math.min(replacing.size(), from + Sql.CHUNK)));
    }
  }

  private void putChunk(String sql, List<StoredRecord> rows) {
    int n = rows.size();
    String[] collections = new String[n];
    UUID[] ids = new UUID[n];
    Long[] versions = new Long[n];
    Boolean[] deleted = new Boolean[n];
    String[] data = new String[n];
    Long[] seqs = new Long[n];
    String[] updatedAt = new String[n];
    String[] fieldHlc = new String[n];
    String[] scopeKeys = new String[n];
    RowWork.each(n, i -> {
      StoredRecord r = rows.get(i);
      scopeKeys[i] = r.scopeKey();
      collections[i] = r.collection();
      ids[i] = r.recordId();
      versions[i] = r.version();
      deleted[i] = r.deleted();
      data[i] = r.data() == null ? null : StoreJson.write(r.data());
      seqs[i] = r.seq();
      updatedAt[i] = Sql.timestampText(r.updatedAt());
      fieldHlc[i] = StoreJson.write(r.fieldHlc());
    });
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "text", collections));
      ps.setArray(3, Sql.array(c, "uuid", ids));
      ps.setArray(4, Sql.array(c, "int8", versions));
      ps.setArray(5, Sql.array(c, "bool", deleted));
      ps.setArray(6, Sql.array(c, "text", data));
      ps.setArray(7, Sql.array(c, "int8", seqs));
      ps.setArray(8, Sql.array(c, "text", updatedAt));
      ps.setArray(9, Sql.array(c, "text", fieldHlc));
      ps.setArray(10, Sql.array(c, "text", scopeKeys));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("writing records", e);
    }
  }

  @Override
  public void openInboxItems(List<InboxItem> items) {
    for (int from = 0; from < items.size(); from += Sql.CHUNK) {
      openChunk(items.subList(from, Math.min(items.size(), from + Sql.CHUNK)));
    }
  }

  private void openChunk(List<InboxItem> items) {
    int n = items.size();
    UUID[] ids = new UUID[n];
    String[] kinds = new String[n];
    String[] statuses = new String[n];
    String[] collections = new String[n];
    UUID[] recordIds = new UUID[n];
    UUID[] mutationIds = new UUID[n];
    UUID[] deviceIds = new UUID[n];
    String[] details = new String[n];
    String[] createdAt = new String[n];
    String[] resolvedAt = new String[n];
    String[] resolutions = new String[n];
    for (int i = 0; i < n; i++) {
      InboxItem item = items.get(i);
      ids[i] = item.id();
      kinds[i] = item.kind();
      statuses[i] = item.status();
      collections[i] = item.collection();
      recordIds[i] = item.recordId();
      mutationIds[i] = item.mutationId();
      deviceIds[i] = item.deviceId();
      details[i] = StoreJson.write(item.detail());
      createdAt[i] = Sql.timestampText(item.createdAt());
      resolvedAt[i] = item.resolvedAt() == null ? null : Sql.timestampText(item.resolvedAt());
      resolutions[i] = item.resolution() == null ? null : StoreJson.write(item.resolution());
    }
    try (PreparedStatement ps = c.prepareStatement(OPEN_INBOX_ITEMS)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", ids));
      ps.setArray(3, Sql.array(c, "text", kinds));
      ps.setArray(4, Sql.array(c, "text", statuses));
      ps.setArray(5, Sql.array(c, "text", collections));
      ps.setArray(6, Sql.array(c, "uuid", recordIds));
      ps.setArray(7, Sql.array(c, "uuid", mutationIds));
      ps.setArray(8, Sql.array(c, "uuid", deviceIds));
      ps.setArray(9, Sql.array(c, "text", details));
      ps.setArray(10, Sql.array(c, "text", createdAt));
      ps.setArray(11, Sql.array(c, "text", resolvedAt));
      ps.setArray(12, Sql.array(c, "text", resolutions));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("opening inbox items", e);
    }
  }

  @Override
  public Optional<InboxItem> findInboxItem(UUID id) {
    try (PreparedStatement ps = c.prepareStatement(FIND_INBOX_ITEM)) {
      ps.setString(1, tenantId);
      ps.setObject(2, id);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(Sql.inboxItem(rs)) : Optional.empty();
      }
    } catch (SQLException e) {
      throw Sql.failure("reading inbox item " + id, e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>No lock beyond the tenant's counter row: every writer of the tenant's inbox holds it, so
   * the item read by {@link #findInboxItem} in this transaction is still as read here.
   *
   * @throws IllegalStateException when the tenant has no item with this id (the transaction is
   *     then rolled back rather than committed without the resolution)
   */
  @Override
  public void resolveInboxItem(UUID id, ObjectNode resolution, Instant at) {
    int updated;
    try (PreparedStatement ps = c.prepareStatement(RESOLVE_INBOX_ITEM)) {
      ps.setObject(1, Sql.timestamp(at));
      ps.setString(2, StoreJson.write(resolution));
      ps.setString(3, tenantId);
      ps.setObject(4, id);
      updated = ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("resolving inbox item " + id, e);
    }
    if (updated == 0) {
      throw new IllegalStateException("tenant " + tenantId + " has no inbox item " + id + " to resolve");
    }
  }

  /** {@inheritDoc} One statement per {@link Sql#CHUNK} outcomes, none for none. */
  @Override
  public void appendOutcomes(List<OutcomeRow> outcomes) {
    for (OutcomeRow o : outcomes) {
      if (o.seq() <= startHead) {
        throw new IllegalStateException("outcome of mutation " + o.result().mutationId() + " has seq " + o.seq()
            + ", not above the head " + startHead + " this transaction started from");
      }
    }
    for (int from = 0; from < outcomes.size(); from += Sql.CHUNK) {
      appendOutcomesChunk(outcomes.subList(from, Math.min(outcomes.size(), from + Sql.CHUNK)));
    }
  }

  private void appendOutcomesChunk(List<OutcomeRow> outcomes) {
    int n = outcomes.size();
    Long[] seqs = new Long[n];
    UUID[] deviceIds = new UUID[n];
    UUID[] mutationIds = new UUID[n];
    String[] results = new String[n];
    String[] at = new String[n];
    for (int i = 0; i < n; i++) {
      OutcomeRow o = outcomes.get(i);
      seqs[i] = o.seq();
      deviceIds[i] = o.deviceId();
      mutationIds[i] = o.result().mutationId();
      results[i] = StoreJson.write(o.result());
      at[i] = Sql.timestampText(o.at());
    }
    try (PreparedStatement ps = c.prepareStatement(APPEND_OUTCOMES)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "int8", seqs));
      ps.setArray(3, Sql.array(c, "uuid", deviceIds));
      ps.setArray(4, Sql.array(c, "uuid", mutationIds));
      ps.setArray(5, Sql.array(c, "text", results));
      ps.setArray(6, Sql.array(c, "text", at));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("appending outcomes", e);
    }
  }

  @Override
  public void appendEvents(List<org.civicsync.server.store.OutboxEvent> events) {
    for (int from = 0; from < events.size(); from += Sql.CHUNK) {
      List<org.civicsync.server.store.OutboxEvent> chunk = events.subList(from, Math.min(events.size(), from + Sql.CHUNK));
      int n = chunk.size();
      Long[] seqs = new Long[n];
      UUID[] ids = new UUID[n];
      String[] subjects = new String[n];
      String[] payloads = new String[n];
      String[] at = new String[n];
      for (int i = 0; i < n; i++) {
        org.civicsync.server.store.OutboxEvent e = chunk.get(i);
        seqs[i] = e.seq();
        ids[i] = e.eventId();
        subjects[i] = e.subject();
        payloads[i] = e.payload();
        at[i] = Sql.timestampText(e.createdAt());
      }
      try (PreparedStatement ps = c.prepareStatement(APPEND_EVENTS)) {
        ps.setString(1, tenantId);
        ps.setArray(2, Sql.array(c, "int8", seqs));
        ps.setArray(3, Sql.array(c, "uuid", ids));
        ps.setArray(4, Sql.array(c, "text", subjects));
        ps.setArray(5, Sql.array(c, "text", payloads));
        ps.setArray(6, Sql.array(c, "text", at));
        ps.executeUpdate();
      } catch (SQLException e) {
        throw Sql.failure("appending domain events", e);
      }
    }
  }

  @Override
  public Map<UUID, MutationResult> latestOutcomes(Collection<UUID> mutationIds) {
    if (mutationIds.isEmpty()) {
      return Map.of();
    }
    Map<UUID, MutationResult> out = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(LATEST_OUTCOMES)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds.toArray(UUID[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.put(rs.getObject(1, UUID.class), StoreJson.result(rs.getString(2)));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the latest outcomes", e);
    }
    return out;
  }

  @Override
  public void forEachLogged(Consumer<LoggedMutation> consumer) {
    // Autocommit is off in a write transaction, so the driver reads through a server-side cursor
    // LOG_FETCH_SIZE rows at a time instead of loading the whole log into memory.
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? ORDER BY seq")) {
      ps.setFetchSize(LOG_FETCH_SIZE);
      ps.setString(1, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          consumer.accept(Sql.loggedMutation(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the event log", e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>No lock beyond the tenant's counter row, which this transaction took first: every
   * transaction that writes claims of the tenant holds that row lock until it commits, so under
   * READ COMMITTED this statement sees every earlier writer's claims, and no other writer can add
   * or release one before this transaction commits. The check ("are there fewer holders than the
   * limit?") and the write of the new claim are therefore atomic as far as any competing push is
   * concerned: two devices racing for the last slot are decided one after the other. (A
   * FOR UPDATE or SERIALIZABLE here would add cost and nothing else.)
   */
  @Override
  public Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims) {
    Map<Claim, Set<UUID>> out = new HashMap<>();
    List<Claim> all = new ArrayList<>(claims);
    for (Claim cl : all) {
      out.put(cl, new HashSet<>());
    }
    for (int from = 0; from < all.size(); from += Sql.CHUNK) {
      List<Claim> chunk = all.subList(from, Math.min(all.size(), from + Sql.CHUNK));
      try (PreparedStatement ps = c.prepareStatement(CLAIM_HOLDERS)) {
        ps.setArray(1, Sql.array(c, "text", chunk.stream().map(Claim::rule).toArray()));
        ps.setArray(2, Sql.array(c, "text", chunk.stream().map(Claim::key).toArray()));
        ps.setString(3, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.get(new Claim(rs.getString(1), rs.getString(2))).add(rs.getObject(3, UUID.class));
          }
        }
      } catch (SQLException e) {
        throw Sql.failure("reading the holders of " + chunk.size() + " rule claims", e);
      }
    }
    return out;
  }

  /** {@inheritDoc} One statement per {@link Sql#CHUNK} records (so one per push), none for none. */
  @Override
  public void putClaims(Map<RecordKey, List<Claim>> claims) {
    if (claims.isEmpty()) {
      return;
    }
    List<Map.Entry<RecordKey, List<Claim>>> entries = new ArrayList<>(claims.size());
    List<String> collections = new ArrayList<>();
    List<UUID> ids = new ArrayList<>();
    List<String> rules = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    for (Map.Entry<RecordKey, List<Claim>> e : claims.entrySet()) {
      if (!bornHere.remove(e.getKey())) {
        entries.add(e);
        continue;
      }
      RecordKey record = e.getKey();
      for (Claim claim : new java.util.LinkedHashSet<>(e.getValue())) {
        collections.add(record.collection());
        ids.add(record.recordId());
        rules.add(claim.rule());
        keys.add(claim.key());
      }
    }
    for (int from = 0; from < collections.size(); from += Sql.CHUNK) {
      int to = Math.min(collections.size(), from + Sql.CHUNK);
      try (PreparedStatement ps = c.prepareStatement(INSERT_CLAIMS)) {
        ps.setString(1, tenantId);
        ps.setArray(2, Sql.array(c, "text", rules.subList(from, to).toArray(String[]::new)));
        ps.setArray(3, Sql.array(c, "text", keys.subList(from, to).toArray(String[]::new)));
        ps.setArray(4, Sql.array(c, "text", collections.subList(from, to).toArray(String[]::new)));
        ps.setArray(5, Sql.array(c, "uuid", ids.subList(from, to).toArray(UUID[]::new)));
        ps.executeUpdate();
      } catch (SQLException e) {
        throw Sql.failure("writing rule claims", e);
      }
    }
    for (int from = 0; from < entries.size(); from += Sql.CHUNK) {
      putClaimsChunk(entries.subList(from, Math.min(entries.size(), from + Sql.CHUNK)));
    }
  }

  private void putClaimsChunk(List<Map.Entry<RecordKey, List<Claim>>> entries) {
    int n = entries.size();
    String[] keyCollections = new String[n];
    UUID[] keyIds = new UUID[n];
    List<String> collections = new ArrayList<>();
    List<UUID> ids = new ArrayList<>();
    List<String> rules = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      RecordKey record = entries.get(i).getKey();
      keyCollections[i] = record.collection();
      keyIds[i] = record.recordId();
      for (Claim claim : entries.get(i).getValue()) {
        collections.add(record.collection());
        ids.add(record.recordId());
        rules.add(claim.rule());
        keys.add(claim.key());
      }
    }
    try (PreparedStatement ps = c.prepareStatement(PUT_CLAIMS)) {
      ps.setArray(1, Sql.array(c, "text", keyCollections));
      ps.setArray(2, Sql.array(c, "uuid", keyIds));
      ps.setArray(3, Sql.array(c, "text", collections.toArray(String[]::new)));
      ps.setArray(4, Sql.array(c, "uuid", ids.toArray(UUID[]::new)));
      ps.setArray(5, Sql.array(c, "text", rules.toArray(String[]::new)));
      ps.setArray(6, Sql.array(c, "text", keys.toArray(String[]::new)));
      ps.setString(7, tenantId);
      ps.setString(8, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("writing rule claims", e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>Claims and scope moves follow from the records, so they go with them (a rebuild writes all
   * three anew): one statement, the other two deletes in data-modifying WITH clauses, which
   * PostgreSQL always runs to completion.
   */
  @Override
  public void clearRecords() {
    absent.clear();
    bornHere.clear();
    try (PreparedStatement ps = c.prepareStatement(CLEAR_RECORDS)) {
      ps.setString(1, tenantId);
      ps.setString(2, tenantId);
      ps.setString(3, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("clearing records, claims and scope moves", e);
    }
  }

  @Override
  public void advanceHead(long newHead) {
    if (newHead < head) {
      throw new IllegalArgumentException("head may not move backwards: " + head + " -> " + newHead);
    }
    if (newHead == head) {
      return; // a push of nothing but replays: no row version, no WAL
    }
    try (PreparedStatement ps = c.prepareStatement("UPDATE tenant_heads SET head = ? WHERE tenant_id = ?")) {
      ps.setLong(1, newHead);
      ps.setString(2, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("advancing the change counter", e);
    }
    head = newHead;
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement. No lock beyond the tenant's counter row: every writer of the device's
   * progress and holds holds it, so what is read here stays as read until this transaction ends.
   */
  @Override
  public DeviceQueue deviceQueue(UUID deviceId) {
    long progress = 0;
    List<HeldMutation> held = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(DEVICE_QUEUE)) {
      ps.setString(1, tenantId);
      ps.setObject(2, deviceId);
      ps.setString(3, tenantId);
      ps.setObject(4, deviceId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          progress = rs.getLong("progress"); // 0 for SQL NULL: no row yet
          if (rs.getObject("mutation_id") != null) {
            held.add(Sql.heldMutation(rs));
          }
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the queue of device " + deviceId, e);
    }
    return new DeviceQueue(progress, held);
  }

  @Override
  public void setDeviceProgress(UUID deviceId, long deviceSeq) {
    try (PreparedStatement ps = c.prepareStatement(SET_DEVICE_PROGRESS)) {
      ps.setString(1, tenantId);
      ps.setObject(2, deviceId);
      ps.setLong(3, deviceSeq);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("recording the progress of device " + deviceId, e);
    }
  }

  /** {@inheritDoc} One statement, none for no ids. */
  @Override
  public Map<UUID, HeldMutation> findHeld(Collection<UUID> mutationIds) {
    if (mutationIds.isEmpty()) {
      return Map.of();
    }
    Map<UUID, HeldMutation> out = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(FIND_HELD)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds.toArray(UUID[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.put(rs.getObject("mutation_id", UUID.class), Sql.heldMutation(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading held mutations", e);
    }
    return out;
  }

  /**
   * {@inheritDoc} One statement per {@link Sql#CHUNK} mutations (so one per push), none for none.
   *
   * @throws IllegalStateException when one of them is already held (the transaction is then
   *     rolled back)
   */
  @Override
  public void hold(List<HeldMutation> held) {
    for (int from = 0; from < held.size(); from += Sql.CHUNK) {
      holdChunk(held.subList(from, Math.min(held.size(), from + Sql.CHUNK)));
    }
  }

  private void holdChunk(List<HeldMutation> held) {
    int n = held.size();
    UUID[] mutationIds = new UUID[n];
    UUID[] deviceIds = new UUID[n];
    Long[] deviceSeqs = new Long[n];
    String[] mutations = new String[n];
    String[] hashes = new String[n];
    String[] receivedAt = new String[n];
    for (int i = 0; i < n; i++) {
      HeldMutation h = held.get(i);
      mutationIds[i] = h.mutation().mutationId();
      deviceIds[i] = h.deviceId();
      deviceSeqs[i] = h.deviceSeq();
      mutations[i] = StoreJson.write(h.mutation());
      hashes[i] = h.contentHash();
      receivedAt[i] = Sql.timestampText(h.receivedAt());
    }
    try (PreparedStatement ps = c.prepareStatement(HOLD)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds));
      ps.setArray(3, Sql.array(c, "uuid", deviceIds));
      ps.setArray(4, Sql.array(c, "int8", deviceSeqs));
      ps.setArray(5, Sql.array(c, "text", mutations));
      ps.setArray(6, Sql.array(c, "text", hashes));
      ps.setArray(7, Sql.array(c, "text", receivedAt));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("holding " + n + " mutations", e);
    }
  }

  /** {@inheritDoc} One statement, none for no ids; ids not held (or another tenant's) are ignored. */
  @Override
  public void release(Collection<UUID> mutationIds) {
    if (mutationIds.isEmpty()) {
      return;
    }
    try (PreparedStatement ps = c.prepareStatement(RELEASE)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds.toArray(UUID[]::new)));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("releasing held mutations", e);
    }
  }

  @Override
  public void markPushed(UUID deviceId, Instant at) {
    // Never backwards: of two pushes of one device, the later commit may carry the earlier time.
    try (PreparedStatement ps = c.prepareStatement("UPDATE devices SET last_push_at = ?"
        + " WHERE device_id = ? AND tenant_id = ? AND (last_push_at IS NULL OR last_push_at < ?)")) {
      ps.setObject(1, Sql.timestamp(at));
      ps.setObject(2, deviceId);
      ps.setString(3, tenantId);
      ps.setObject(4, Sql.timestamp(at));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("recording the push time", e);
    }
  }

  // ---------------------------------------------------------------- enrollment and devices

  /**
   * {@inheritDoc}
   *
   * @throws IllegalArgumentException when the code is another tenant's
   */
  @Override
  public void insertEnrollmentCode(EnrollmentCodeRow code) {
    ownTenant(code.tenantId(), "enrollment code");
    try (PreparedStatement ps = c.prepareStatement(INSERT_ENROLLMENT_CODE)) {
      ps.setString(1, code.codeHash());
      ps.setString(2, tenantId);
      ps.setString(3, code.label());
      ps.setObject(4, Sql.timestamp(code.createdAt()));
      ps.setObject(5, Sql.timestamp(code.expiresAt()));
      ps.setInt(6, code.maxUses());
      ps.setInt(7, code.uses());
      ps.setString(8, code.userId());
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("storing an enrollment code", e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement: the check and the increment are one UPDATE, so a code is never overused,
   * and a code of another tenant is not touched.
   */
  @Override
  public Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now) {
    try (PreparedStatement ps = c.prepareStatement(REDEEM_ENROLLMENT_CODE)) {
      ps.setString(1, codeHash);
      ps.setString(2, tenantId);
      ps.setObject(3, Sql.timestamp(now));
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          return Optional.empty();
        }
        EnrollmentCodeRow after = Sql.enrollmentCode(rs);
        // RETURNING shows the row after the increment; report it as it was before.
        return Optional.of(new EnrollmentCodeRow(after.codeHash(), after.tenantId(), after.label(), after.createdAt(),
            after.expiresAt(), after.maxUses(), after.uses() - 1, after.userId()));
      }
    } catch (SQLException e) {
      throw Sql.failure("redeeming an enrollment code", e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * @throws IllegalArgumentException when the device is another tenant's
   * @throws IllegalStateException when the id or token hash is taken, or the kind is neither
   *     {@link DeviceRow#DEVICE} nor {@link DeviceRow#API_CLIENT} (the transaction then rolls back)
   */
  @Override
  public void insertDevice(DeviceRow device) {
    ownTenant(device.tenantId(), "device");
    try (PreparedStatement ps = c.prepareStatement(INSERT_DEVICE)) {
      ps.setObject(1, device.deviceId());
      ps.setString(2, tenantId);
      ps.setString(3, device.name());
      ps.setString(4, device.publicKey());
      ps.setString(5, device.tokenHash());
      ps.setObject(6, Sql.timestamp(device.enrolledAt()));
      Sql.setInstantOrNull(ps, 7, device.lastPushAt());
      Sql.setInstantOrNull(ps, 8, device.lastPullAt());
      ps.setString(9, device.kind());
      ps.setString(10, device.userId());
      Sql.setInstantOrNull(ps, 11, device.tokenExpiresAt());
      Sql.setInstantOrNull(ps, 12, device.revokedAt());
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("storing device " + device.deviceId(), e);
    }
  }

  /** {@inheritDoc} A device that is not this tenant's is left alone. */
  @Override
  public void renewToken(UUID deviceId, String tokenHash, Instant expiresAt) {
    try (PreparedStatement ps = c.prepareStatement(RENEW_TOKEN)) {
      ps.setString(1, tokenHash);
      Sql.setInstantOrNull(ps, 2, expiresAt);
      ps.setObject(3, deviceId);
      ps.setString(4, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("renewing the token of device " + deviceId, e);
    }
  }

  @Override
  public boolean revokeDevice(UUID deviceId, Instant at) {
    try (PreparedStatement ps = c.prepareStatement(REVOKE_DEVICE)) {
      ps.setObject(1, Sql.timestamp(at));
      ps.setObject(2, deviceId);
      ps.setString(3, tenantId);
      return ps.executeUpdate() > 0;
    } catch (SQLException e) {
      throw Sql.failure("revoking device " + deviceId, e);
    }
  }

  // ---------------------------------------------------------------- users and org units

  /**
   * {@inheritDoc}
   *
   * @throws IllegalArgumentException when the user is another tenant's
   */
  @Override
  public void putUser(UserRow user) {
    ownTenant(user.tenantId(), "user");
    try (PreparedStatement ps = c.prepareStatement(PUT_USER)) {
      ps.setString(1, tenantId);
      ps.setString(2, user.userId());
      ps.setArray(3, Sql.array(c, "text", user.roles().toArray(String[]::new)));
      ps.setArray(4, Sql.array(c, "text", user.orgUnits().toArray(String[]::new)));
      ps.setObject(5, Sql.timestamp(user.createdAt()));
      ps.setObject(6, Sql.timestamp(user.updatedAt()));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("storing user " + user.userId(), e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * @throws IllegalArgumentException when the unit is another tenant's
   */
  @Override
  public void putOrgUnit(OrgUnitRow unit) {
    ownTenant(unit.tenantId(), "org unit");
    try (PreparedStatement ps = c.prepareStatement(PUT_ORG_UNIT)) {
      ps.setString(1, tenantId);
      ps.setString(2, unit.orgUnitId());
      ps.setString(3, unit.parent().orElse(null));
      ps.setString(4, unit.name());
      ps.setObject(5, Sql.timestamp(unit.updatedAt()));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("storing org unit " + unit.orgUnitId(), e);
    }
  }

  private void ownTenant(String rowTenant, String what) {
    if (!tenantId.equals(rowTenant)) {
      throw new IllegalArgumentException("a write transaction of tenant " + tenantId + " cannot store a " + what + " of tenant "
          + rowTenant);
    }
  }

  // ---------------------------------------------------------------- scope moves

  /** {@inheritDoc} One statement per {@link Sql#CHUNK} moves, none for none. */
  @Override
  public void recordMoves(List<ScopeMove> moves) {
    for (int from = 0; from < moves.size(); from += Sql.CHUNK) {
      recordMovesChunk(moves.subList(from, Math.min(moves.size(), from + Sql.CHUNK)));
    }
  }

  private void recordMovesChunk(List<ScopeMove> moves) {
    int n = moves.size();
    Long[] seqs = new Long[n];
    String[] collections = new String[n];
    UUID[] recordIds = new UUID[n];
    String[] fromKeys = new String[n];
    for (int i = 0; i < n; i++) {
      ScopeMove m = moves.get(i);
      seqs[i] = m.seq();
      collections[i] = m.collection();
      recordIds[i] = m.recordId();
      fromKeys[i] = m.fromKey();
    }
    try (PreparedStatement ps = c.prepareStatement(RECORD_MOVES)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "int8", seqs));
      ps.setArray(3, Sql.array(c, "text", collections));
      ps.setArray(4, Sql.array(c, "uuid", recordIds));
      ps.setArray(5, Sql.array(c, "text", fromKeys));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("recording " + n + " scope moves", e);
    }
  }

  // ---------------------------------------------------------------- the audit chain

  /** {@inheritDoc} Read with the counter lock when the transaction began; no statement of its own. */
  @Override
  public AuditHead auditHead() {
    return auditHead;
  }

  /**
   * {@inheritDoc}
   *
   * <p>One statement, which moves the head on the tenant's counter row and inserts the entry.
   *
   * @throws IllegalStateException when the entry does not follow the head (nothing is written)
   */
  @Override
  public void appendAudit(AuditEntry entry) {
    if (entry.seq() != auditHead.seq() + 1 || !auditHead.hash().equals(entry.prevHash())) {
      throw new IllegalStateException("audit entry " + entry.seq() + " with prevHash " + entry.prevHash()
          + " does not follow the head of tenant " + tenantId + " (" + auditHead.seq() + ", " + auditHead.hash() + ")");
    }
    int inserted;
    try (PreparedStatement ps = c.prepareStatement(APPEND_AUDIT)) {
      ps.setLong(1, entry.seq());
      ps.setString(2, entry.hash());
      ps.setString(3, tenantId);
      ps.setLong(4, auditHead.seq());
      ps.setString(5, auditHead.hash());
      ps.setLong(6, entry.seq());
      ps.setObject(7, Sql.timestamp(entry.at()));
      ps.setString(8, entry.content());
      ps.setString(9, entry.prevHash());
      ps.setString(10, entry.hash());
      inserted = ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("appending audit entry " + entry.seq(), e);
    }
    if (inserted != 1) {
      // Cannot happen while this transaction holds the counter lock; refuse rather than commit a gap.
      throw new IllegalStateException("the audit head of tenant " + tenantId + " moved under a write transaction");
    }
    auditHead = new AuditHead(entry.seq(), entry.hash());
  }
}
