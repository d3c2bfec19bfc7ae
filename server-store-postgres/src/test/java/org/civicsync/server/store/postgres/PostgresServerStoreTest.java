package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import org.civicsync.server.store.ServerStore;
import org.civicsync.testing.ServerStoreContract;
import org.junit.jupiter.api.AfterAll;

/** The store contract on PostgreSQL, in a schema of its own that is dropped afterwards. */
class PostgresServerStoreTest extends ServerStoreContract {
  private final String schema = TestDatabases.freshSchema();

  @Override
  protected ServerStore openStore() {
    return TestDatabases.openFreshStore(schema);
  }

  // Runs before the suite's own @AfterAll; closing twice is harmless.
  @AfterAll
  void dropSchema() {
    store.close();
    TestDatabases.dropSchema(schema);
  }

  /** Tampers through a connection of its own, outside the store, as someone with database access would. */
  @Override
  protected Tampering tampering() {
    return new Tampering() {
      @Override
      public void alterLogEntry(String tenantId, long seq) {
        change("UPDATE mutation_log SET mutation = jsonb_set(mutation::jsonb, '{hlc}', '\"tampered\"')::text"
            + " WHERE tenant_id = ? AND seq = ?", tenantId, seq);
      }

      @Override
      public void deleteLogEntry(String tenantId, long seq) {
        change("DELETE FROM mutation_log WHERE tenant_id = ? AND seq = ?", tenantId, seq);
      }

      @Override
      public void swapLogEntries(String tenantId, long seqA, long seqB) {
        // (tenant_id, seq) is unique and seqs are positive: park A far above while B takes its place.
        long parked = Long.MAX_VALUE - seqA;
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", parked, tenantId, seqA);
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", seqA, tenantId, seqB);
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", seqB, tenantId, parked);
      }

      @Override
      public void alterAuditEntry(String tenantId, long auditSeq) {
        // Still JSON, no longer the text the hash covers.
        change("UPDATE audit_log SET content = content || ' ' WHERE tenant_id = ? AND seq = ?", tenantId, auditSeq);
      }

      @Override
      public void deleteAuditEntry(String tenantId, long auditSeq) {
        change("DELETE FROM audit_log WHERE tenant_id = ? AND seq = ?", tenantId, auditSeq);
      }
    };
  }

  private void change(String sql, Object... args) {
    try (Connection c = DriverManager.getConnection(TestDatabases.jdbcUrl())) {
      c.setSchema(schema);
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        for (int i = 0; i < args.length; i++) {
          ps.setObject(i + 1, args[i]);
        }
        if (ps.executeUpdate() != 1) {
          throw new IllegalStateException("expected to change one row: " + sql);
        }
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }
}
