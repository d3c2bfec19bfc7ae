package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gives the write path's tables their first statistics as soon as they hold some rows, instead of
 * waiting for autovacuum.
 *
 * <p>Why: a table that has never been analysed has no statistics at all, and PostgreSQL then
 * cannot tell a record id (unique) from a collection name (a handful of values). Its plan for a
 * push's key lookups became an index scan of the whole collection with the id as a filter (the
 * {@code (tenant_id, collection, seq)} index is smaller than the primary key, and without
 * statistics both look equally selective), and a fresh database absorbing its first backlog ran at
 * a few hundred mutations per second until autovacuum's first ANALYZE, up to a minute
 * ({@code autovacuum_naptime}) later, or never when autovacuum is off. Once a table has been
 * analysed, even small, its statistics say the id is unique and stay right as it grows, so this
 * runs at most once per store: after {@value #AFTER_SEQS} sequence numbers were committed through
 * it, it analyses those of {@link #TABLES} that have never been analysed (PostgreSQL 14+ marks
 * them with {@code reltuples = -1}). It costs a few milliseconds, once, on the thread whose
 * commit crossed the mark, after that commit and outside the tenant's lock.
 */
final class FirstStatistics {
  private static final Logger LOG = LoggerFactory.getLogger(FirstStatistics.class);

  /** The tables a push reads by key. */
  static final List<String> TABLES = List.of("records", "mutation_log", "rule_claims", "outcomes", "held_mutations", "graveyard");

  /** Committed sequence numbers after which the tables have enough rows to be worth analysing. */
  static final long AFTER_SEQS = 1_000;

  private final AtomicLong committed = new AtomicLong();
  private final AtomicBoolean done;

  private FirstStatistics(boolean enabled) {
    this.done = new AtomicBoolean(!enabled);
  }

  static FirstStatistics enabled() {
    return new FirstStatistics(true);
  }

  /** For stores whose statements a test counts: never runs. */
  static FirstStatistics disabled() {
    return new FirstStatistics(false);
  }

  /** Counts a committed write of {@code seqs} sequence numbers; the one that crosses the mark analyses. */
  void committed(long seqs, DataSource dataSource) {
    if (done.get() || seqs <= 0 || committed.addAndGet(seqs) < AFTER_SEQS || !done.compareAndSet(false, true)) {
      return;
    }
    try (Connection c = dataSource.getConnection()) {
      c.setAutoCommit(true);
      List<String> never = new ArrayList<>();
      try (PreparedStatement ps = c.prepareStatement("SELECT c.relname FROM pg_class c"
          + " WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(?::text[]) AND c.reltuples < 0")) {
        ps.setArray(1, c.createArrayOf("text", TABLES.toArray()));
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            never.add(rs.getString(1));
          }
        }
      }
      try (Statement st = c.createStatement()) {
        for (String table : never) {
          st.execute("ANALYZE " + table);
        }
      }
      if (!never.isEmpty()) {
        LOG.info("gave never-analysed tables their first statistics: {}", never);
      }
    } catch (SQLException e) {
      // Only speed depends on it; autovacuum will do it later.
      LOG.warn("could not analyse the store's tables: {}", e.toString());
    }
  }
}
