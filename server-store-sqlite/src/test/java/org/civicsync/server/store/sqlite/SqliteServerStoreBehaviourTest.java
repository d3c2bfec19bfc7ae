package org.civicsync.server.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.Statement;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PullQuery;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.TenantRow;
import org.flywaydb.core.Flyway;
import org.junit.jupiter.api.Test;

/** What only the SQLite store has to show: snapshots of its read transactions and the upgrade of existing files. */
class SqliteServerStoreBehaviourTest {
  private static final Instant T0 = Instant.parse("2026-03-01T08:00:00.123456Z");

  @Test
  void readSeesOneSnapshotWhileAWriterCommits() throws Exception {
    Path file = Files.createTempDirectory("civicsync-sqlite-snapshot").resolve("civicsync.db");
    try (SqliteServerStore store = SqliteServerStore.open(file)) {
      store.createTenant(new TenantRow("t1", T0));
      AuditEntry first = new AuditEntry(1, T0, "{\"n\":1}", AuditHead.GENESIS_HASH, "a".repeat(64));
      AuditEntry second = new AuditEntry(2, T0.plusSeconds(1), "{\"n\":2}", first.hash(), "b".repeat(64));
      store.write("t1", tx -> {
        tx.appendAudit(first);
        return null;
      });

      List<AuditEntry> seen = store.read("t1", rx -> {
        assertThat(rx.auditHead()).isEqualTo(new AuditHead(1, first.hash()));
        // A writer commits while the read transaction is open: it is not blocked by it...
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> store.write("t1", tx -> {
          tx.appendAudit(second);
          return null;
        }));
        try {
          writer.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
          throw new AssertionError("the writer was blocked by a reader", e);
        }
        // ...and the reader keeps seeing the state it started with.
        assertThat(rx.auditHead().seq()).isEqualTo(1);
        return rx.audit(0, 10);
      });
      assertThat(seen).containsExactly(first);
      List<AuditEntry> after = store.read("t1", rx -> rx.audit(0, 10));
      assertThat(after).containsExactly(first, second);
      AuditHead head = store.read("t1", rx -> rx.auditHead());
      assertThat(head).isEqualTo(new AuditHead(2, second.hash()));
    }
  }

  @Test
  void aFileOfTheLastVersionKeepsItsDataAndGainsTheNewColumns() throws Exception {
    Path file = Files.createTempDirectory("civicsync-sqlite-upgrade").resolve("civicsync.db");
    String url = "jdbc:sqlite:" + file.toAbsolutePath();
    Flyway.configure().dataSource(url, null, null).locations("classpath:db/migration/sqlite").target("5").load().migrate();
    UUID deviceId = UUID.fromString("0b1c4e9a-8f4e-4d39-9d55-3f1a2b3c4d5e");
    UUID recordId = UUID.fromString("7d3f2a10-1c2b-4e5f-8a9b-0c1d2e3f4a5b");
    try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
      st.executeUpdate("INSERT INTO tenants VALUES ('t1', '2026-01-01T00:00:00Z')");
      st.executeUpdate("INSERT INTO tenant_heads VALUES ('t1', 7)");
      st.executeUpdate("INSERT INTO devices (device_id, tenant_id, name, public_key, token_hash, enrolled_at, kind) VALUES ('"
          + deviceId + "', 't1', 'tablet', NULL, 'h1', '2026-01-02T00:00:00Z', 'device')");
      st.executeUpdate("INSERT INTO records (tenant_id, collection, record_id, version, deleted, data, seq, updated_at, field_hlc)"
          + " VALUES ('t1', 'clinics', '" + recordId + "', 1, 0, '{\"name\":\"A\"}', 7, '2026-01-02T00:00:00Z', '{}')");
    }

    try (SqliteServerStore store = SqliteServerStore.open(file)) {
      DeviceRow d = store.findDevice(deviceId).orElseThrow();
      assertThat(d.userId()).isNull();
      assertThat(d.tokenExpiresAt()).isNull();
      assertThat(d.revoked()).isFalse();
      assertThat(store.findRecord("t1", new RecordKey("clinics", recordId)).orElseThrow().scopeKey()).isNull();
      List<Object> heads = store.write("t1", tx -> List.of(tx.head(), tx.auditHead()));
      assertThat(heads).containsExactly(7L, AuditHead.EMPTY);
      PullPage page = store.pull("t1", new PullQuery(0, 10, Set.of(), Optional.of(Set.of("district-1")), true, Set.of()));
      assertThat(page.records()).extracting(r -> r.recordId()).containsExactly(recordId);
      assertThat(page.head()).isEqualTo(7);
    }
  }
}
