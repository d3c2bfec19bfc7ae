package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.ReadTx;

/**
 * A read-only view of one tenant on a connection whose REPEATABLE READ, READ ONLY transaction is
 * open (see {@link PostgresServerStore#read}): every statement here reads the snapshot the first
 * one took. Each page is one statement walking a primary or unique key in seq order; a limit of 0
 * costs none.
 */
final class PostgresReadTx implements ReadTx {
  private static final String AUDIT_HEAD = "SELECT audit_seq, audit_hash FROM tenant_heads WHERE tenant_id = ?";

  private static final String AUDIT =
      "SELECT " + Sql.AUDIT_COLUMNS + " FROM audit_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?";

  private static final String LOGGED =
      "SELECT " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?";

  private static final String OUTCOMES =
      "SELECT " + Sql.OUTCOME_COLUMNS + " FROM outcomes WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?";

  @FunctionalInterface
  private interface RowMapper<T> {
    T map(ResultSet rs) throws SQLException;
  }

  private final Connection c;
  private final String tenantId;
  private final AuditHead auditHead;
  private boolean closed;

  private PostgresReadTx(Connection c, String tenantId, AuditHead auditHead) {
    this.c = c;
    this.tenantId = tenantId;
    this.auditHead = auditHead;
  }

  /**
   * Reads the audit head, the transaction's first statement and so the one that takes its snapshot.
   *
   * @throws IllegalArgumentException when the tenant does not exist
   */
  static PostgresReadTx open(Connection c, String tenantId) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement(AUDIT_HEAD)) {
      ps.setString(1, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) {
          throw new IllegalArgumentException("no tenant '" + tenantId + "'");
        }
        return new PostgresReadTx(c, tenantId, new AuditHead(rs.getLong(1), rs.getString(2)));
      }
    }
  }

  /** Ends the view: its connection goes back to the pool. */
  void close() {
    closed = true;
  }

  @Override
  public AuditHead auditHead() {
    open();
    return auditHead;
  }

  @Override
  public List<AuditEntry> audit(long afterSeq, int limit) {
    return page("reading the audit log", AUDIT, afterSeq, limit, Sql::auditEntry);
  }

  @Override
  public List<LoggedMutation> logged(long afterSeq, int limit) {
    return page("reading the event log", LOGGED, afterSeq, limit, Sql::loggedMutation);
  }

  @Override
  public List<OutcomeRow> outcomeRows(long afterSeq, int limit) {
    return page("reading outcomes", OUTCOMES, afterSeq, limit, Sql::outcome);
  }

  private <T> List<T> page(String what, String sql, long afterSeq, int limit, RowMapper<T> mapper) {
    open();
    if (limit < 0) {
      throw new IllegalArgumentException("limit must not be negative, got " + limit);
    }
    if (limit == 0) {
      return List.of();
    }
    List<T> out = new ArrayList<>();
    try (PreparedStatement ps = c.prepareStatement(sql)) {
      ps.setString(1, tenantId);
      ps.setLong(2, afterSeq);
      ps.setInt(3, limit);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(mapper.map(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure(what + " of tenant " + tenantId, e);
    }
    return out;
  }

  private void open() {
    if (closed) {
      throw new IllegalStateException("the read transaction of tenant " + tenantId + " has ended");
    }
  }
}
