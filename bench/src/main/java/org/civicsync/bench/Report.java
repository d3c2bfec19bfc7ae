package org.civicsync.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import org.civicsync.core.json.Json;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.data.category.DefaultCategoryDataset;

/**
 * The run's results: {@code latest.json} (machine, figures, goals, every raw number behind each
 * figure), {@code latest.md} (the table docs/benchmarks.md shows) and {@code latest.png} (each
 * figure against its goal).
 */
final class Report {
  /** A figure's goal: at least or at most a value. */
  record Goal(boolean atLeast, double value, String compares) {
    boolean met(double v) {
      return atLeast ? v >= value : v <= value;
    }

    /** How far the figure is towards its goal: 1 is the goal, more is better. */
    double score(double v) {
      return atLeast ? v / value : value / v;
    }

    String text() {
      return (atLeast ? "≥ " : "≤ ") + fmt(value);
    }
  }

  static final Map<String, Goal> GOALS = new LinkedHashMap<>();

  static {
    GOALS.put("ingestVsCopyLimit", new Goal(true, 0.6, "durable mutations/s through POST /v1/sync/push ÷ COPY + INSERT … ON CONFLICT DO NOTHING of the same rows (PostgreSQL)"));
    GOALS.put("ingestVsPouchdb", new Goal(true, 3, "our push ÷ pouchdb-server _bulk_docs, same documents"));
    GOALS.put("pullVsSelect", new Goal(true, 0.8, "changes/s through GET /v1/sync/pull (pages of 1,000) ÷ JDBC SELECT of the same pages (PostgreSQL)"));
    GOALS.put("pullVsPouchdb", new Goal(true, 3, "our pull ÷ pouchdb-server _changes?include_docs=true, same documents"));
    GOALS.put("wireVsGzip", new Goal(false, 1.0, "bytes on the wire per mutation, request + response with headers ÷ gzip of the mutations' JSON"));
    GOALS.put("drain2gVsLimit", new Goal(false, 1.2, "time to push a 10,000-change outbox over 2G rural ÷ that link's limit for the bytes"));
    GOALS.put("drainEdgeVsLimit", new Goal(false, 1.2, "the same over lossy EDGE"));
    GOALS.put("fanoutP99Ms", new Goal(false, 50, "p99 ms from commit to notice on 1,000 live streams"));
    GOALS.put("fanoutVsBare", new Goal(false, 3, "that p99 ÷ the p99 of a bare in-process broadcaster to the same streams"));
    GOALS.put("peakHeapMiB", new Goal(false, 256, "peak used heap of the server during the ingest, MiB"));
  }

  final ObjectNode root = Json.mapper().createObjectNode();
  final ObjectNode machine = root.putObject("machine");
  final ObjectNode settings = root.putObject("settings");
  final ObjectNode figures = root.putObject("figures");
  final ObjectNode goals = root.putObject("goals");
  final ObjectNode raw = root.putObject("raw");
  final ObjectNode ceilings = root.putObject("ceilings");

  Report() {
    GOALS.forEach((k, g) -> goals.put(k, g.text()));
  }

  void figure(String name, double value) {
    figures.put(name, Math.round(value * 1000) / 1000.0);
  }

  /**
   * The most a figure could measure in this run, set by a limit measured in the same run (the
   * table says so where that is short of the goal: the goal cannot be met on this machine).
   */
  void ceiling(String name, double value, String label, String why) {
    ceilings.putObject(name).put("value", Math.round(value * 1000) / 1000.0).put("label", label).put("why", why);
  }

  void write(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("latest.json"), Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n");
    Files.writeString(dir.resolve("latest.md"), markdown(), StandardCharsets.UTF_8);
    chart(dir.resolve("latest.png"));
  }

  String markdown() {
    StringBuilder sb = new StringBuilder("| figure | measured | goal | met | what it divides |\n| --- | --- | --- | --- | --- |\n");
    GOALS.forEach((k, g) -> {
      var v = figures.get(k);
      String measured = v == null || v.isNull() ? "not measured" : fmt(v.asDouble());
      String met = v == null || v.isNull() ? "—" : g.met(v.asDouble()) ? "yes" : "**no**";
      var ceiling = ceilings.path(k);
      if (ceiling.path("value").isNumber() && !g.met(ceiling.path("value").asDouble())) {
        met += " (" + ceiling.path("label").asText() + ": " + fmt(ceiling.path("value").asDouble()) + ")";
      }
      sb.append("| `").append(k).append("` | ").append(measured).append(" | ").append(g.text()).append(" | ").append(met).append(" | ")
          .append(g.compares()).append(" |\n");
    });
    return sb.toString();
  }

  private void chart(Path png) throws IOException {
    DefaultCategoryDataset data = new DefaultCategoryDataset();
    GOALS.forEach((k, g) -> {
      var v = figures.get(k);
      if (v != null && !v.isNull() && v.asDouble() > 0) {
        data.addValue(g.score(v.asDouble()), "measured ÷ goal", k);
      }
    });
    NumberAxis axis = new NumberAxis("share of the goal (1 = goal met; higher is better)");
    org.jfree.chart.axis.CategoryAxis cats = new org.jfree.chart.axis.CategoryAxis();
    BarRenderer bars = new BarRenderer();
    bars.setBarPainter(new StandardBarPainter());
    bars.setSeriesPaint(0, new Color(0x2b6cb0));
    bars.setShadowVisible(false);
    bars.setDefaultItemLabelGenerator(new org.jfree.chart.labels.StandardCategoryItemLabelGenerator("{2}",
        new java.text.DecimalFormat("0.00")));
    bars.setDefaultItemLabelsVisible(true);
    CategoryPlot plot = new CategoryPlot(data, cats, axis, bars);
    plot.setOrientation(PlotOrientation.HORIZONTAL);
    ValueMarker goal = new ValueMarker(1.0, new Color(0xc53030), new BasicStroke(2f));
    goal.setLabel("goal");
    plot.addRangeMarker(goal);
    plot.setBackgroundPaint(Color.WHITE);
    plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
    JFreeChart chart = new JFreeChart("CivicSync benchmarks: each figure against its goal", JFreeChart.DEFAULT_TITLE_FONT, plot, false);
    chart.setBackgroundPaint(Color.WHITE);
    ChartUtils.saveChartAsPNG(png.toFile(), chart, 1000, 520);
  }

  static String fmt(double v) {
    if (Math.abs(v) >= 100) {
      return String.format(Locale.ROOT, "%.0f", v);
    }
    return String.format(Locale.ROOT, "%.2f", v);
  }
}
