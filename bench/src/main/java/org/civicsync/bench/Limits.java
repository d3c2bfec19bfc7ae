package org.civicsync.bench;

import java.io.StringReader;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

/**
 * The database's own limits for the same rows: what the server wrote to the event log and the
 * projection, written again by the fastest idempotent path the database offers, with the same
 * indexes, in batches of the same size, with the same number of concurrent writers, durable
 * commits. And the limit of reading the same pages back.
 */
final class Limits {
  private Limits() {}

  /** Rows per table, as text lines for COPY. */
  record Rows(List<String> log, List<String> records) {}

  /** The tenant's log and projection rows as the PostgreSQL store holds them, in seq order. */
  static Rows readPostgres(String url, String schema, String tenant) throws Exception {
    try (Connection c = DriverManager.getConnection(url)) {
      CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
      return new Rows(copyOut(copy, "SELECT * FROM " + schema + ".mutation_log WHERE tenant_id = '" + tenant + "' ORDER BY seq"),
          copyOut(copy, "SELECT * FROM " + schema + ".records WHERE tenant_id = '" + tenant + "' ORDER BY seq"));
    }
  }

  private static List<String> copyOut(CopyManager copy, String select) throws Exception {
    java.io.StringWriter w = new java.io.StringWriter();
    copy.copyOut("COPY (" + select + ") TO STDOUT", w);
    List<String> lines = new ArrayList<>();
    for (String l : w.toString().split("\n")) {
      if (!l.isEmpty()) {
        lines.add(l);
      }
    }
    return lines;
  }

  /**
   * COPY of each batch into a staging table, then INSERT … ON CONFLICT DO NOTHING into tables
   * made LIKE the store's (indexes included), one transaction per batch, {@code writers}
   * connections at once. Returns seconds for all batches.
   */
  static double copyLimit(String url, String schema, Rows rows, int batch, int writers) throws Exception {
    String limit = schema + "_limit";
    try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
      s.execute("DROP SCHEMA IF EXISTS " + limit + " CASCADE");
      s.execute("CREATE SCHEMA " + limit);
      s.execute("CREATE TABLE " + limit + ".mutation_log (LIKE " + schema + ".mutation_log INCLUDING ALL)");
      s.execute("CREATE TABLE " + limit + ".records (LIKE " + schema + ".records INCLUDING ALL)");
    }
    int batches = (rows.log().size() + batch - 1) / batch;
    AtomicInteger next = new AtomicInteger();
    double seconds = Workers.run(writers, true, "the COPY limit", writer -> {
      try (Connection c = DriverManager.getConnection(url)) {
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
          s.execute("CREATE TEMP TABLE staging_log (LIKE " + limit + ".mutation_log) ON COMMIT DELETE ROWS");
          s.execute("CREATE TEMP TABLE staging_records (LIKE " + limit + ".records) ON COMMIT DELETE ROWS");
        }
        c.commit();
        CopyManager copy = c.unwrap(PGConnection.class).getCopyAPI();
        try (PreparedStatement log = c.prepareStatement("INSERT INTO " + limit + ".mutation_log SELECT * FROM staging_log ON CONFLICT DO NOTHING");
            PreparedStatement rec = c.prepareStatement("INSERT INTO " + limit + ".records SELECT * FROM staging_records ON CONFLICT DO NOTHING")) {
          for (int b = next.getAndIncrement(); b < batches; b = next.getAndIncrement()) {
            int from = b * batch;
            copy.copyIn("COPY staging_log FROM STDIN", new StringReader(join(rows.log(), from, from + batch)));
            log.executeUpdate();
            String recs = join(rows.records(), Math.min(from, rows.records().size()), Math.min(from + batch, rows.records().size()));
            if (!recs.isEmpty()) {
              copy.copyIn("COPY staging_records FROM STDIN", new StringReader(recs));
              rec.executeUpdate();
            }
            c.commit();
          }
        }
      }
    });
    try (Connection c = DriverManager.getConnection(url); Statement s = c.createStatement()) {
      s.execute("DROP SCHEMA " + limit + " CASCADE");
    }
    return seconds;
  }

  private static String join(List<String> lines, int from, int to) {
    StringBuilder sb = new StringBuilder();
    for (int i = from; i < Math.min(to, lines.size()); i++) {
      sb.append(lines.get(i)).append('\n');
    }
    return sb.toString();
  }

  /**
   * SQLite's limit for the same rows: INSERT OR IGNORE of each batch in one transaction into a
   * copy of the store's two tables (same indexes, WAL, synchronous FULL), one writer (SQLite has
   * one). Returns seconds.
   */
  static double sqliteLimit(java.nio.file.Path storeFile, java.nio.file.Path scratch, String tenant, int batch) throws Exception {
    java.nio.file.Files.deleteIfExists(scratch);
    List<String> ddl = new ArrayList<>();
    List<Object[]> logRows = new ArrayList<>();
    List<Object[]> recRows = new ArrayList<>();
    int logCols;
    int recCols;
    try (Connection src = DriverManager.getConnection("jdbc:sqlite:file:" + storeFile + "?mode=ro"); Statement s = src.createStatement()) {
      try (ResultSet rs = s.executeQuery("SELECT sql FROM sqlite_master WHERE tbl_name IN ('mutation_log', 'records') AND sql IS NOT NULL"
          + " ORDER BY type = 'index'")) {
        while (rs.next()) {
          ddl.add(rs.getString(1));
        }
      }
      logCols = read(s, "SELECT * FROM mutation_log WHERE tenant_id = '" + tenant + "' ORDER BY seq", logRows);
      recCols = read(s, "SELECT * FROM records WHERE tenant_id = '" + tenant + "' ORDER BY seq", recRows);
    }
    try (Connection c = DriverManager.getConnection("jdbc:sqlite:" + scratch)) {
      try (Statement s = c.createStatement()) {
        s.execute("PRAGMA journal_mode=WAL");
        s.execute("PRAGMA synchronous=FULL");
        for (String d : ddl) {
          s.execute(d);
        }
      }
      c.setAutoCommit(false);
      long t0 = System.nanoTime();
      try (PreparedStatement log = c.prepareStatement("INSERT OR IGNORE INTO mutation_log VALUES (" + "?,".repeat(logCols - 1) + "?)");
          PreparedStatement rec = c.prepareStatement("INSERT OR IGNORE INTO records VALUES (" + "?,".repeat(recCols - 1) + "?)")) {
        for (int from = 0; from < logRows.size(); from += batch) {
          bind(log, logRows, from, batch);
          bind(rec, recRows, Math.min(from, recRows.size()), batch);
          c.commit();
        }
      }
      return (System.nanoTime() - t0) / 1e9;
    }
  }

  private static int read(Statement s, String select, List<Object[]> out) throws Exception {
    try (ResultSet rs = s.executeQuery(select)) {
      int n = rs.getMetaData().getColumnCount();
      while (rs.next()) {
        Object[] row = new Object[n];
        for (int i = 0; i < n; i++) {
          row[i] = rs.getObject(i + 1);
        }
        out.add(row);
      }
      return n;
    }
  }

  private static void bind(PreparedStatement ps, List<Object[]> rows, int from, int batch) throws Exception {
    for (int i = from; i < Math.min(from + batch, rows.size()); i++) {
      Object[] row = rows.get(i);
      for (int j = 0; j < row.length; j++) {
        ps.setObject(j + 1, row[j]);
      }
      ps.addBatch();
    }
    ps.executeBatch();
  }
}
