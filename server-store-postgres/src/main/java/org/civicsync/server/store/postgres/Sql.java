package org.civicsync.server.store.postgres;

import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import org.civicsync.core.records.RecordState;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.HeldMutation;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoreUnavailableException;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.UserRow;

/** Value conversions and row mappings shared by the store and its write transactions. */
final class Sql {
  /**
   * Rows per statement of a batch write. A push carries at most 5,000 mutations, so a push is one
   * statement per table; only projection rebuilds of big tenants take several.
   */
  static final int CHUNK = 5_000;

  static final String LOG_COLUMNS =
      "seq, mutation, content_hash, device_id, result, received_at, after_state, note, detail_digest, compacted_at";
  static final String RECORD_COLUMNS = "collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key";
  /** A graveyard row read as the tombstone it was, with the names of {@link #RECORD_COLUMNS}. */
  static final String GRAVE_COLUMNS =
      "collection, record_id, version, true AS deleted, NULL::jsonb AS data, seq, updated_at, field_hlc, scope_key";
  static final String INBOX_COLUMNS =
      "id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at, resolved_at, resolution";
  static final String OUTCOME_COLUMNS = "seq, device_id, result, at";
  static final String DEVICE_COLUMNS =
      "device_id, tenant_id, name, public_key, token_hash, enrolled_at, last_push_at, last_pull_at, kind, user_id, token_expires_at,"
          + " revoked_at";
  static final String CODE_COLUMNS = "code_hash, tenant_id, label, created_at, expires_at, max_uses, uses, user_id";
  static final String USER_COLUMNS = "tenant_id, user_id, roles, org_units, created_at, updated_at";
  static final String ORG_UNIT_COLUMNS = "tenant_id, org_unit_id, parent, name, updated_at";
  static final String AUDIT_COLUMNS = "seq, at, content, prev_hash, hash";
  static final String HELD_COLUMNS = "device_id, mutation, content_hash, received_at";

  private Sql() {}

  /**
   * An instant as PostgreSQL keeps it. timestamptz holds microseconds while {@code
   * Clock.instant()} may carry nanoseconds; truncating here (rather than letting the driver round)
   * means every instant is stored as the same, predictable value however it is bound.
   */
  static Instant stored(Instant at) {
    return at.truncatedTo(ChronoUnit.MICROS);
  }

  static OffsetDateTime timestamp(Instant at) {
    return OffsetDateTime.ofInstant(stored(at), ZoneOffset.UTC);
  }

  static void setInstantOrNull(PreparedStatement ps, int index, Instant at) throws SQLException {
    if (at == null) {
      ps.setNull(index, Types.TIMESTAMP_WITH_TIMEZONE);
    } else {
      ps.setObject(index, timestamp(at));
    }
  }

  /**
   * A record state as this store keeps it: its {@code updatedAt} truncated like every other
   * instant, so an after-state read back from the log equals the projection row it produced.
   */
  static RecordState stored(RecordState s) {
    Instant at = stored(s.updatedAt());
    return at.equals(s.updatedAt()) ? s : new RecordState(s.version(), s.deleted(), s.data(), at, s.fieldHlc());
  }

  /** The text form of an instant for a {@code ?::timestamptz[]} array parameter. */
  static String timestampText(Instant at) {
    return stored(at).toString();
  }

  /** {@code null} for SQL NULL. */
  static Instant instant(ResultSet rs, String column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }

  /** The same, by the column's position. */
  static Instant instant(ResultSet rs, int column) throws SQLException {
    OffsetDateTime t = rs.getObject(column, OffsetDateTime.class);
    return t == null ? null : t.toInstant();
  }

  static Array array(Connection c, String type, Object[] elements) throws SQLException {
    return c.createArrayOf(type, elements);
  }

  static LoggedMutation loggedMutation(ResultSet rs) throws SQLException {
    String after = rs.getString("after_state");
    String note = rs.getString("note");
    return new LoggedMutation(rs.getLong("seq"), StoreJson.mutation(rs.getString("mutation")), rs.getString("content_hash"),
        rs.getObject("device_id", UUID.class), StoreJson.result(rs.getString("result")), instant(rs, "received_at"),
        after == null ? null : StoreJson.state(after), note == null ? null : StoreJson.object(note), rs.getString("detail_digest"),
        instant(rs, "compacted_at"));
  }

  static StoredRecord storedRecord(ResultSet rs) throws SQLException {
    String data = rs.getString("data");
    return new StoredRecord(rs.getString("collection"), rs.getObject("record_id", UUID.class), rs.getLong("version"),
        rs.getBoolean("deleted"), data == null ? null : StoreJson.object(data), rs.getLong("seq"), instant(rs, "updated_at"),
        StoreJson.clocks(rs.getString("field_hlc")), rs.getString("scope_key"));
  }

  /** The columns of a pull's result, by position. */
  static final int PULL_PART = 1;
  static final int PULL_SEQ = 7;

  /**
   * A row of the change feed from a pull's result (columns part, collection, record_id, version,
   * deleted, data as text, seq, updated_at, field_hlc, scope_key, from_key): the data as compact
   * UTF-8 JSON (jsonb prints spaces), no field clocks.
   */
  static org.civicsync.server.store.PulledRecord pulledRecord(ResultSet rs) throws SQLException {
    byte[] data = rs.getBytes(6);
    return new org.civicsync.server.store.PulledRecord(rs.getString(2), rs.getObject(3, UUID.class), rs.getLong(4), rs.getBoolean(5),
        data == null ? null : StoreJson.compact(data), rs.getLong(PULL_SEQ), instant(rs, 8), rs.getString(10));
  }

  static InboxItem inboxItem(ResultSet rs) throws SQLException {
    String resolution = rs.getString("resolution");
    return new InboxItem(rs.getObject("id", UUID.class), rs.getString("kind"), rs.getString("status"), rs.getString("collection"),
        rs.getObject("record_id", UUID.class), rs.getObject("mutation_id", UUID.class), rs.getObject("device_id", UUID.class),
        StoreJson.object(rs.getString("detail")), instant(rs, "created_at"), instant(rs, "resolved_at"),
        resolution == null ? null : StoreJson.object(resolution));
  }

  static OutcomeRow outcome(ResultSet rs) throws SQLException {
    return new OutcomeRow(rs.getLong("seq"), rs.getObject("device_id", UUID.class), StoreJson.result(rs.getString("result")),
        instant(rs, "at"));
  }

  /** A row of {@code devices} read through {@link #DEVICE_COLUMNS}. */
  static DeviceRow device(ResultSet rs) throws SQLException {
    return new DeviceRow(rs.getObject("device_id", UUID.class), rs.getString("tenant_id"), rs.getString("name"),
        rs.getString("public_key"), rs.getString("token_hash"), instant(rs, "enrolled_at"), instant(rs, "last_push_at"),
        instant(rs, "last_pull_at"), rs.getString("kind"), rs.getString("user_id"), instant(rs, "token_expires_at"),
        instant(rs, "revoked_at"));
  }

  /** A row of {@code enrollment_codes} read through {@link #CODE_COLUMNS}. */
  static EnrollmentCodeRow enrollmentCode(ResultSet rs) throws SQLException {
    return new EnrollmentCodeRow(rs.getString("code_hash"), rs.getString("tenant_id"), rs.getString("label"),
        instant(rs, "created_at"), instant(rs, "expires_at"), rs.getInt("max_uses"), rs.getInt("uses"), rs.getString("user_id"));
  }

  /** A row of {@code users} read through {@link #USER_COLUMNS}. */
  static UserRow user(ResultSet rs) throws SQLException {
    return new UserRow(rs.getString("tenant_id"), rs.getString("user_id"), strings(rs, "roles"), strings(rs, "org_units"),
        instant(rs, "created_at"), instant(rs, "updated_at"));
  }

  /** A row of {@code org_units} read through {@link #ORG_UNIT_COLUMNS}. */
  static OrgUnitRow orgUnit(ResultSet rs) throws SQLException {
    return new OrgUnitRow(rs.getString("tenant_id"), rs.getString("org_unit_id"), Optional.ofNullable(rs.getString("parent")),
        rs.getString("name"), instant(rs, "updated_at"));
  }

  /** A row of {@code audit_log} read through {@link #AUDIT_COLUMNS}. */
  static AuditEntry auditEntry(ResultSet rs) throws SQLException {
    return new AuditEntry(rs.getLong("seq"), instant(rs, "at"), rs.getString("content"), rs.getString("prev_hash"),
        rs.getString("hash"));
  }

  /** A {@code text[]} column as a list, in its order. */
  static List<String> strings(ResultSet rs, String column) throws SQLException {
    Array a = rs.getArray(column);
    if (a == null) {
      return List.of();
    }
    try {
      return List.of((String[]) a.getArray());
    } finally {
      a.free();
    }
  }

  /** A row of {@code held_mutations} read through {@link #HELD_COLUMNS}. */
  static HeldMutation heldMutation(ResultSet rs) throws SQLException {
    return new HeldMutation(rs.getObject("device_id", UUID.class), StoreJson.mutation(rs.getString("mutation")),
        rs.getString("content_hash"), instant(rs, "received_at"));
  }

  /**
   * The one statement that lists a tenant's live records of one collection by top-level field
   * values, in record-id order, after a cursor when given, at most a limit: shared by {@link
   * PostgresServerStore#listRecords} and {@link PostgresWriteTx#findByFields}, so that both compare
   * alike. Each filter is {@code data ->> ? = ?}, the field name bound as a parameter like its value
   * (field names are user input and never become SQL text). The filters are in a fixed order, so
   * that equal queries are equal statements.
   */
  record RecordsByFields(String tenantId, String collection, List<Map.Entry<String, String>> filters, Optional<UUID> after,
      int limit) {

    /**
     * @throws IllegalArgumentException for a negative limit
     * @throws NullPointerException for a null field name or value
     */
    static RecordsByFields of(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after, int limit) {
      Objects.requireNonNull(equals, "equals");
      Objects.requireNonNull(after, "after");
      if (limit < 0) {
        throw new IllegalArgumentException("limit must not be negative, got " + limit);
      }
      List<Map.Entry<String, String>> filters = new ArrayList<>(new TreeMap<>(equals).entrySet());
      for (Map.Entry<String, String> f : filters) {
        Objects.requireNonNull(f.getValue(), "value of field " + f.getKey());
      }
      return new RecordsByFields(tenantId, collection, List.copyOf(filters), after, limit);
    }

    /** A limit of 0 asks for nothing: no statement. */
    boolean empty() {
      return limit == 0;
    }

    String sql() {
      StringBuilder sql = new StringBuilder("SELECT " + RECORD_COLUMNS
          + " FROM records WHERE tenant_id = ? AND collection = ? AND NOT deleted");
      if (after.isPresent()) {
        sql.append(" AND record_id > ?");
      }
      for (int f = 0; f < filters.size(); f++) {
        sql.append(" AND data ->> ?::text = ?::text");
      }
      return sql.append(" ORDER BY record_id LIMIT ?").toString();
    }

    void bind(PreparedStatement ps) throws SQLException {
      int i = 1;
      ps.setString(i++, tenantId);
      ps.setString(i++, collection);
      if (after.isPresent()) {
        ps.setObject(i++, after.get());
      }
      for (Map.Entry<String, String> f : filters) {
        ps.setString(i++, f.getKey());
        ps.setString(i++, f.getValue());
      }
      ps.setInt(i, limit);
    }
  }

  /**
   * What a failed statement means to the caller. Data and constraint errors (SQLSTATE classes 22
   * and 23) are the caller's or this store's bug, not an outage: reporting them as {@link
   * StoreUnavailableException} would make a health check or a retry loop chase a database that is
   * fine. Everything else (connection loss, shutdown, timeouts, resource limits) is unavailability.
   */
  static RuntimeException failure(String what, SQLException e) {
    String state = e.getSQLState();
    if (state != null && (state.startsWith("22") || state.startsWith("23"))) {
      return new IllegalStateException(what + " was refused by PostgreSQL (SQLSTATE " + state + "): " + e.getMessage(), e);
    }
    return new StoreUnavailableException(what + " failed: PostgreSQL " + (state == null ? "" : "(SQLSTATE " + state + ") ")
        + e.getMessage(), e);
  }
}
