package org.civicsync.server.store.sqlite;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import org.civicsync.server.store.ServerStore;
import org.civicsync.testing.ServerStoreContract;

class SqliteServerStoreTest extends ServerStoreContract {
  private Path file;

  @Override
  protected ServerStore openStore() {
    try {
      file = Files.createTempDirectory("civicsync-sqlite-test").resolve("civicsync.db");
      return SqliteServerStore.open(file);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Tampers through a connection of its own, as someone with access to the file would. */
  @Override
  protected Tampering tampering() {
    return new Tampering() {
      @Override
      public void alterLogEntry(String tenantId, long seq) {
        change("UPDATE mutation_log SET mutation = json_set(mutation, '$.hlc', 'tampered') WHERE tenant_id = ? AND seq = ?",
            tenantId, seq);
      }

      @Override
      public void deleteLogEntry(String tenantId, long seq) {
        change("DELETE FROM mutation_log WHERE tenant_id = ? AND seq = ?", tenantId, seq);
      }

      @Override
      public void swapLogEntries(String tenantId, long seqA, long seqB) {
        // (tenant_id, seq) is unique: park A at a negative seq while B takes its place.
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", -seqA, tenantId, seqA);
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", seqA, tenantId, seqB);
        change("UPDATE mutation_log SET seq = ? WHERE tenant_id = ? AND seq = ?", seqB, tenantId, -seqA);
      }

      @Override
      public void alterAuditEntry(String tenantId, long auditSeq) {
        change("UPDATE audit_log SET content = replace(content, '\"v\":2', '\"v\":9') WHERE tenant_id = ? AND seq = ?", tenantId, auditSeq);
      }

      @Override
      public void deleteAuditEntry(String tenantId, long auditSeq) {
        change("DELETE FROM audit_log WHERE tenant_id = ? AND seq = ?", tenantId, auditSeq);
      }
    };
  }

  private void change(String sql, Object... args) {
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + file.toAbsolutePath());
        Statement pragma = c.createStatement();
        PreparedStatement ps = c.prepareStatement(sql)) {
      pragma.execute("PRAGMA busy_timeout = 30000");
      for (int i = 0; i < args.length; i++) {
        ps.setObject(i + 1, args[i]);
      }
      if (ps.executeUpdate() != 1) {
        throw new IllegalStateException("expected to change one row: " + sql);
      }
    } catch (SQLException e) {
      throw new IllegalStateException(e);
    }
  }
}
