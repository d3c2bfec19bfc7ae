package org.civicsync.server.store.postgres;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.TestDevices;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A fresh database absorbing its first backlog must not wait for autovacuum: without statistics
 * PostgreSQL looked a push's records up by scanning their whole collection (see
 * {@link FirstStatistics}).
 */
class FirstStatisticsTest {
  private final String schema = TestDatabases.freshSchema();
  private final PostgresServerStore store = PostgresServerStore.open(PostgresConfig.of(TestDatabases.jdbcUrl()).withSchema(schema));
  private final Fixtures fx = new Fixtures(System.nanoTime());

  @AfterEach
  void drop() {
    store.close();
    TestDatabases.dropSchema(schema);
  }

  @Test
  void theFirstThousandChangesGiveTheWritePathsTablesStatisticsAndItsLookupsThePrimaryKey() throws Exception {
    String tenant = "t-" + UUID.randomUUID();
    assertThat(store.createTenant(new TenantRow(tenant, java.time.Instant.now()))).isTrue();
    Caller.Device device = TestDevices.enroll(new TenancyService(store, Clock.systemUTC()), tenant);
    PushService push = new PushService(store, CollectionCatalog.of(CollectionCatalog.builtInDefinitions()), Clock.systemUTC());

    push(push, device, (int) FirstStatistics.AFTER_SEQS - 1);
    assertThat(neverAnalysed()).as("before the mark").contains("records", "mutation_log");
    assertThat(lookupPlan(tenant)).as("the plan without statistics").doesNotContain("records_pkey");

    push(push, device, 1);
    assertThat(neverAnalysed()).as("after the mark").doesNotContain("records", "mutation_log", "rule_claims");
    assertThat(lookupPlan(tenant)).contains("Index Scan using records_pkey");
  }

  private void push(PushService push, Caller.Device device, int n) {
    List<Mutation> batch = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      batch.add(fx.create(fx.uuid(), fx.appointment().put("status", "cancelled")));
    }
    assertThat(push.push(device, TestDevices.signed(device, batch)).results()).allMatch(r -> r.status() == MutationStatus.APPLIED);
  }

  private List<String> neverAnalysed() throws Exception {
    List<String> out = new ArrayList<>();
    try (Connection c = DriverManager.getConnection(TestDatabases.jdbcUrl());
        PreparedStatement ps = c.prepareStatement("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            + " WHERE n.nspname = ? AND c.relkind = 'r' AND c.reltuples < 0")) {
      ps.setString(1, schema);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.add(rs.getString(1));
        }
      }
    }
    return out;
  }

  /** The plan PostgreSQL makes now for the write path's lookup of a push's records by key. */
  private String lookupPlan(String tenant) throws Exception {
    try (Connection c = DriverManager.getConnection(TestDatabases.jdbcUrl())) {
      c.setSchema(schema);
      try (PreparedStatement ps = c.prepareStatement("EXPLAIN " + PostgresWriteTx.FIND_RECORDS)) {
        ps.setArray(1, c.createArrayOf("text", new Object[] {"appointments"}));
        ps.setArray(2, c.createArrayOf("uuid", new Object[] {UUID.randomUUID()}));
        ps.setString(3, tenant);
        StringBuilder plan = new StringBuilder();
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            plan.append(rs.getString(1)).append('\n');
          }
        }
        return plan.toString();
      }
    }
  }
}
