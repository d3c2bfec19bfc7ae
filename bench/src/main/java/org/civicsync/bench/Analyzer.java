package org.civicsync.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;

/**
 * What autovacuum's ANALYZE does for a growing table, for a PostgreSQL where autovacuum is off
 * (as on the test machines): without statistics the planner chooses its plans for an empty table
 * and keeps them, and the ingest measures a misconfigured database rather than the server. While
 * the load runs, this analyses the store's tables whenever one has grown by a tenth since it was
 * last analysed (autovacuum's default threshold), and counts how often it did.
 */
final class Analyzer implements AutoCloseable {
  private final Thread thread; // null when autovacuum is on
  private final ObjectNode raw;
  private volatile boolean running = true;
  private int runs;

  private Analyzer(String url, String schema, ObjectNode raw, boolean active) {
    this.raw = raw;
    this.thread = !active ? null : Thread.ofPlatform().daemon().name("analyzer").start(() -> {
      long[] analysedAt = new long[3];
      String[] tables = {"mutation_log", "records", "rule_claims"};
      try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
        while (running) {
          for (int i = 0; i < tables.length; i++) {
            long rows;
            try (ResultSet rs = st.executeQuery("SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = '" + schema
                + "' AND relname = '" + tables[i] + "'")) {
              rows = rs.next() ? rs.getLong(1) : 0;
            }
            if (rows > 50 + analysedAt[i] * 1.1) {
              st.execute("ANALYZE " + schema + "." + tables[i]);
              analysedAt[i] = rows;
              runs++;
            }
          }
          Thread.sleep(250);
        }
      } catch (Exception e) {
        // The run goes on without it; the count says how far it got.
      }
    });
  }

  /** Starts analysing when the database's autovacuum is off; otherwise does nothing. */
  static Analyzer startIfNeeded(String url, String schema, ObjectNode raw) {
    return new Analyzer(url, schema, raw, "off".equals(raw.path("autovacuum").asText()));
  }

  @Override
  public void close() throws InterruptedException {
    running = false;
    if (thread != null) {
      thread.join();
      raw.put("analyzeRunsDuringIngest", runs);
    }
  }
}
