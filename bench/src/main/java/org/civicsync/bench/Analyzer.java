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
 * the load runs, this does what the autovacuum launcher would with the database's own settings:
 * once per {@code autovacuum_naptime} it analyses each of the store's tables that has grown by
 * {@code autovacuum_analyze_threshold} rows plus {@code autovacuum_analyze_scale_factor} of its
 * size since it was last analysed, throttled like an autovacuum worker
 * ({@code autovacuum_vacuum_cost_delay}), and counts how often it did. (An earlier version polled
 * every 250 ms: PostgreSQL then spent half its statement time of the ingest in ANALYZE, far more
 * than autovacuum ever would.)
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
        long napMillis = (long) (setting(st, "autovacuum_naptime") * 1000);
        double threshold = setting(st, "autovacuum_analyze_threshold");
        double scale = setting(st, "autovacuum_analyze_scale_factor");
        double delay = setting(st, "autovacuum_vacuum_cost_delay");
        double limit = setting(st, "autovacuum_vacuum_cost_limit");
        // A manual ANALYZE honours the vacuum_cost_* settings of its session, as a worker does.
        st.execute("SET vacuum_cost_delay = '" + (delay < 0 ? setting(st, "vacuum_cost_delay") : delay) + "ms'");
        st.execute("SET vacuum_cost_limit = " + (long) (limit < 0 ? setting(st, "vacuum_cost_limit") : limit));
        long nextRound = System.nanoTime();
        while (running) {
          if (System.nanoTime() - nextRound >= 0) {
            nextRound += napMillis * 1_000_000;
            for (int i = 0; i < tables.length && running; i++) {
              long rows;
              try (ResultSet rs = st.executeQuery("SELECT n_live_tup FROM pg_stat_user_tables WHERE schemaname = '" + schema
                  + "' AND relname = '" + tables[i] + "'")) {
                rows = rs.next() ? rs.getLong(1) : 0;
              }
              if (rows - analysedAt[i] > threshold + scale * analysedAt[i]) {
                st.execute("ANALYZE " + schema + "." + tables[i]);
                analysedAt[i] = rows;
                runs++;
              }
            }
          }
          Thread.sleep(100);
        }
      } catch (Exception e) {
        // The run goes on without it; the count says how far it got.
      }
    });
  }

  private static double setting(Statement st, String name) throws java.sql.SQLException {
    try (ResultSet rs = st.executeQuery("SELECT setting FROM pg_settings WHERE name = '" + name + "'")) {
      rs.next();
      return Double.parseDouble(rs.getString(1));
    }
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
