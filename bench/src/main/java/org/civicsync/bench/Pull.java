package org.civicsync.bench;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.List;

/**
 * Figure 2: an initial sync through {@code GET /v1/sync/pull}, page after page, against a plain
 * JDBC {@code SELECT} of the same pages of the same rows.
 */
final class Pull {
  /** One complete download. */
  record Download(long changes, double seconds, long pages, long bodyBytes) {
    double perSecond() {
      return changes / seconds;
    }
  }

  /** Passes of each side run, and not counted, before the measured ones. */
  static final int WARM_UP_PASSES = 5;

  /** Passes of each side measured after the warm-up; the figure takes the median. */
  static final int MEASURED_PASSES = 3;

  /**
   * Our pull and the plain {@code SELECT}, each as the median of its measured passes, and our first
   * (cold) pass; {@code pulls} and {@code selects} are the measured passes in the order they ran
   * (alternating), so that a run whose ratio moved can say whether one pass or all of them did.
   */
  record Comparison(Download pull, Download select, Download cold, List<Download> pulls, List<Download> selects) {
    /** Each measured pass's changes per second, ours and the {@code SELECT}'s side by side. */
    void putPasses(com.fasterxml.jackson.databind.node.ObjectNode into) {
      com.fasterxml.jackson.databind.node.ArrayNode a = into.putArray("passesPerSecond");
      for (int i = 0; i < pulls.size(); i++) {
        a.addObject().put("pull", pulls.get(i).perSecond()).put("select", selects.get(i).perSecond());
      }
    }
  }

  /**
   * Both sides warmed up first — a long-running server has compiled its pull path, while the first
   * passes of a fresh one run mostly interpreted — then measured alternately.
   */
  static Comparison compare(java.util.concurrent.Callable<Download> pull, java.util.concurrent.Callable<Download> select) throws Exception {
    List<Download> pulls = new ArrayList<>();
    List<Download> selects = new ArrayList<>();
    Download cold = null;
    for (int pass = 0; pass < WARM_UP_PASSES + MEASURED_PASSES; pass++) {
      Download p = pull.call();
      Download q = select.call();
      if (pass == 0) {
        cold = p;
      }
      if (pass >= WARM_UP_PASSES) {
        pulls.add(p);
        selects.add(q);
      }
    }
    return new Comparison(median(pulls), median(selects), cold, List.copyOf(pulls), List.copyOf(selects));
  }

  private Pull() {}

  /** The download of median speed. */
  static Download median(List<Download> passes) {
    List<Download> sorted = new ArrayList<>(passes);
    sorted.sort(java.util.Comparator.comparingDouble(Download::perSecond));
    return sorted.get(sorted.size() / 2);
  }

  /** The whole feed through HTTP, {@code limit} per page; {@code gzip} asks for compressed pages as the SDK does. */
  static Download http(Api api, Api.Device d, int limit, boolean gzip) throws Exception {
    long t0 = System.nanoTime();
    String cursor = null;
    long changes = 0;
    long pages = 0;
    long bytes = 0;
    while (true) {
      HttpRequest.Builder b = HttpRequest.newBuilder(api.base().resolve("/v1/sync/pull?limit=" + limit
          + (cursor == null ? "" : "&cursor=" + cursor))).header("Authorization", "Bearer " + d.token());
      if (gzip) {
        b.header("Accept-Encoding", "gzip");
      }
      HttpResponse<byte[]> r = api.http.send(b.build(), HttpResponse.BodyHandlers.ofByteArray());
      if (r.statusCode() != 200) {
        throw new IllegalStateException("pull answered " + r.statusCode());
      }
      bytes += r.body().length;
      byte[] raw = r.headers().firstValue("Content-Encoding").filter("gzip"::equals).isPresent() ? Api.gunzip(r.body()) : r.body();
      String body = new String(raw, StandardCharsets.UTF_8);
      // A client must find the cursor and count what it got; it need not build objects for that.
      int n = Ingest.count(body, "\"recordId\":");
      changes += n;
      pages++;
      cursor = field(body, "\"cursor\":\"");
      if (!body.contains("\"hasMore\":true")) {
        break;
      }
    }
    return new Download(changes, (System.nanoTime() - t0) / 1e9, pages, bytes);
  }

  private static String field(String body, String prefix) {
    int i = body.lastIndexOf(prefix) + prefix.length();
    return body.substring(i, body.indexOf('"', i));
  }

  /** The same pages straight from the projection table with JDBC, every column read as text. */
  static Download jdbc(String url, String table, String tenant, int limit, boolean postgres) throws Exception {
    String cols = postgres ? "collection, record_id, version, deleted, data::text, seq, updated_at, field_hlc::text, scope_key"
        : "collection, record_id, version, deleted, data, seq, updated_at, field_hlc, scope_key";
    long t0 = System.nanoTime();
    long changes = 0;
    long pages = 0;
    long chars = 0;
    try (Connection c = DriverManager.getConnection(url);
        PreparedStatement ps = c.prepareStatement("SELECT " + cols + " FROM " + table + " WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?")) {
      long after = 0;
      while (true) {
        ps.setString(1, tenant);
        ps.setLong(2, after);
        ps.setInt(3, limit);
        int n = 0;
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            for (int i = 1; i <= 9; i++) {
              String v = rs.getString(i);
              chars += v == null ? 0 : v.length();
            }
            after = rs.getLong(6);
            n++;
          }
        }
        changes += n;
        pages++;
        if (n < limit) {
          break;
        }
      }
    }
    return new Download(changes, (System.nanoTime() - t0) / 1e9, pages, chars);
  }
}
