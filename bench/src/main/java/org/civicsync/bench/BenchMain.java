package org.civicsync.bench;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.link.LinkProfile;

/**
 * Runs the benchmark suite and writes {@code latest.json}, {@code latest.md} and {@code
 * latest.png}. {@code bench/run} is the way in; {@code --smoke} runs every figure on tiny sizes
 * in seconds (the test suite does, so the harness never rots).
 *
 * <pre>
 * java -cp … org.civicsync.bench.BenchMain [--smoke] [--out DIR] [--work DIR] [--pg-url JDBC_URL] [--pouchdb DIR]
 * </pre>
 */
public final class BenchMain {
  /** Sizes of one run. */
  record Sizes(int devices, int batchSize, int batchesPerDevice, int sqliteBatchesPerDevice, int drainMutations, int drainBatch,
      double factor2g, double factorEdge, int subscribers, int commits, int pullPage, int pouchBatchesPerDevice) {
    // Drains run in compressed time, which does not scale the device's and the server's own work
    // (about 7 s for the 10,000 changes): the smaller the factor, the closer the figure to real
    // time. EDGE runs in real time (x1); 2G's 865 s limit needs x5 for the two drains, which run
    // at the same time, to take about as long as EDGE's.
    static final Sizes FULL = new Sizes(8, 500, 50, 10, 10_000, 100, 5, 1, 1000, 100, 1000, 25);
    static final Sizes SMOKE = new Sizes(2, 50, 2, 2, 150, 50, 400, 200, 20, 3, 1000, 2);

    Sizes withBatchesPerDevice(int n) {
      return new Sizes(devices, batchSize, n, sqliteBatchesPerDevice, drainMutations, drainBatch, factor2g, factorEdge, subscribers, commits,
          pullPage, pouchBatchesPerDevice);
    }

    Sizes withDrainFactors(double twoG, double edge) {
      return new Sizes(devices, batchSize, batchesPerDevice, sqliteBatchesPerDevice, drainMutations, drainBatch, twoG, edge, subscribers,
          commits, pullPage, pouchBatchesPerDevice);
    }
  }

  private final Sizes sizes;
  private final Path work;
  /** For profiling: stop after the PostgreSQL ingest and keep its schema. */
  static boolean onlyIngest;
  /**
   * For an experiment with {@code --only-ingest}: the devices split over this many tenants, whose
   * writes, each tenant's under its own lock, run at the same time (what overlapping a tenant's
   * writes could give). The figure is one tenant's, as a district's backlog is.
   */
  static int ingestTenants = 1;
  /** For profiling: stop after the PostgreSQL pull (figure 2; the ingest runs first to fill the feed). */
  static boolean onlyPull;
  /** For profiling: only the SQLite figures (the default store's ingest and pull). */
  static boolean onlySqlite;
  /** For profiling: stop after the PostgreSQL figures (one server process, one recording). */
  static boolean onlyPostgres;
  /** For profiling: only the loopback drain (the device and the server alone, no link). */
  static boolean onlyDrainLoopback;
  /** For profiling: only the drains (figure 4). */
  static boolean onlyDrains;
  /** The changes every drain queues (the same in each, so the loopback pass's bytes are theirs). */
  private static final long DRAIN_SEED = 7;
  /** For profiling: only the fan-out (figure 5). */
  static boolean onlyFanout;
  private final Report report = new Report();
  private final long started = System.nanoTime();

  BenchMain(Sizes sizes, Path work) {
    this.sizes = sizes;
    this.work = work;
  }

  public static void main(String[] args) throws Exception {
    boolean smoke = false;
    int batches = 0;
    String[] drainFactors = null;
    Path out = Path.of("bench", "results");
    Path work = null;
    String pgUrl = null;
    Path pouch = Path.of("bench", ".scratch", "pouchdb");
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--smoke" -> smoke = true;
        case "--out" -> out = Path.of(args[++i]);
        case "--work" -> work = Path.of(args[++i]);
        case "--pg-url" -> pgUrl = args[++i];
        case "--pouchdb" -> pouch = Path.of(args[++i]);
        case "--only-ingest" -> onlyIngest = true;
        case "--ingest-tenants" -> ingestTenants = Integer.parseInt(args[++i]);
        case "--only-postgres" -> onlyPostgres = true;
        case "--only-pull" -> onlyPull = true;
        case "--only-sqlite" -> onlySqlite = true;
        case "--only-drain-loopback" -> onlyDrainLoopback = true;
        case "--only-fanout" -> onlyFanout = true;
        case "--only-drains" -> onlyDrains = true;
        case "--batches-per-device" -> batches = Integer.parseInt(args[++i]);
        case "--drain-factors" -> drainFactors = args[++i].split(",");
        default -> {
          System.err.println("unknown argument " + args[i]);
          System.exit(2);
        }
      }
    }
    if (work == null) {
      work = Files.createTempDirectory("civicsync-bench");
    }
    if (ingestTenants > 1 && !onlyIngest) {
      System.err.println("--ingest-tenants is an experiment for --only-ingest");
      System.exit(2);
    }
    Sizes sizes = smoke ? Sizes.SMOKE : Sizes.FULL;
    if (drainFactors != null) {
      sizes = sizes.withDrainFactors(Double.parseDouble(drainFactors[0]), Double.parseDouble(drainFactors[1]));
    }
    if (batches > 0) {
      sizes = sizes.withBatchesPerDevice(batches);
    }
    Report r = new BenchMain(sizes, work).run(Optional.ofNullable(pgUrl), Pouch.find(pouch));
    r.write(out);
    System.out.println();
    System.out.print(r.markdown());
    System.out.println("\nwrote " + out.resolve("latest.json") + ", latest.md, latest.png");
    System.exit(0);
  }

  Report run(Optional<String> pgUrl, Optional<Path> pouchBin) throws Exception {
    machine();
    ObjectNode s = report.settings;
    s.put("devices", sizes.devices()).put("batchSize", sizes.batchSize()).put("mutationsPostgres", sizes.devices() * sizes.batchSize()
        * sizes.batchesPerDevice()).put("mutationsSqlite", sizes.devices() * sizes.batchSize() * sizes.sqliteBatchesPerDevice())
        .put("pullPage", sizes.pullPage()).put("drainMutations", sizes.drainMutations()).put("drainBatch", sizes.drainBatch())
        .put("timeFactor2g", sizes.factor2g()).put("timeFactorEdge", sizes.factorEdge()).put("subscribers", sizes.subscribers())
        .put("commits", sizes.commits()).put("serverHeap", "256m");
    if (onlySqlite) {
      sqliteFigures();
      progress("--only-sqlite: stopping here");
      return report;
    }
    String url = pgUrl.orElseGet(BenchMain::postgres);
    Workload pgWork = postgresFigures(url);
    if (onlyPostgres || onlyDrainLoopback || onlyDrains || onlyFanout) {
      progress("--only-postgres: stopping here");
      return report;
    }
    sqliteFigures();
    pouchFigures(pouchBin, pgWork);
    progress("done in " + Math.round((System.nanoTime() - started) / 1e9) + " s");
    return report;
  }

  // ---------------------------------------------------------------- PostgreSQL: figures 1, 2, 3, 4, 5, 7

  private Workload postgresFigures(String url) throws Exception {
    String schema = "bench_" + Long.toHexString(System.nanoTime());
    ObjectNode raw = report.raw.putObject("postgres");
    try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
      raw.put("version", one(st, "SHOW server_version")).put("fsync", one(st, "SHOW fsync"))
          .put("synchronousCommit", one(st, "SHOW synchronous_commit")).put("autovacuum", one(st, "SHOW autovacuum"))
          .put("sharedBuffers", one(st, "SHOW shared_buffers"));
    }
    progress("PostgreSQL " + raw.get("version").asText() + " (fsync " + raw.get("fsync").asText() + ", synchronous_commit "
        + raw.get("synchronousCommit").asText() + "), schema " + schema);
    try (ServerProcess server = new ServerProcess(work.resolve("pg-server"), List.of("--db-url", url, "--db-schema", schema), "256m")) {
      Api api = new Api(server.uri(""));
      if (onlyDrainLoopback || onlyDrains) {
        drains(api, raw);
        return null;
      }
      if (onlyFanout) {
        fanout(api, raw);
        return null;
      }
      api.tenant("bench");
      int perTenant = sizes.devices() / ingestTenants;
      Workload w = new Workload("bench", api.devices("bench", perTenant), sizes.batchesPerDevice(), sizes.batchSize(), 1);
      for (int t = 2; t <= ingestTenants; t++) {
        api.tenant("bench-" + t);
        w = w.and(new Workload("bench-" + t, api.devices("bench-" + t, perTenant), sizes.batchesPerDevice(), sizes.batchSize(), t));
      }
      progress("ingest: " + w.mutations + " signed mutations from " + sizes.devices() + " devices in batches of " + sizes.batchSize()
          + (ingestTenants > 1 ? ", the devices split over " + ingestTenants + " tenants" : ""));
      WriteLocks locksBefore = WriteLocks.read(api);
      java.util.OptionalDouble serverCpu0 = CpuTime.of(server.pid());
      java.util.OptionalDouble pgCpu0 = CpuTime.postgres();
      java.util.Optional<CpuTime.Threads> threads0 = CpuTime.threads(server.pid());
      java.util.OptionalDouble benchCpu0 = CpuTime.of(ProcessHandle.current().pid());
      server.startSampling();
      Ingest.Pass first;
      // The second half of the ingest apart: the server has compiled its hot paths by then, and
      // the tables are larger; the whole-run figure hides which of the two moves the rate.
      Halfway half = new Halfway();
      long ingestStart = System.nanoTime();
      try (Analyzer analyzer = Analyzer.startIfNeeded(url, schema, raw)) {
        first = Ingest.run(api, w, () -> half.read(server.pid()));
      }
      long ended = System.nanoTime();
      java.util.OptionalDouble serverCpu1 = CpuTime.of(server.pid());
      java.util.OptionalDouble pgCpu1 = CpuTime.postgres();
      java.util.Optional<CpuTime.Threads> threads1 = CpuTime.threads(server.pid());
      double benchMicros = CpuTime.microsEach(benchCpu0, CpuTime.of(ProcessHandle.current().pid()), w.mutations);
      WriteLocks locks = WriteLocks.read(api).minus(locksBefore);
      double serverMicros = CpuTime.microsEach(serverCpu0, serverCpu1, w.mutations);
      double pgMicros = CpuTime.microsEach(pgCpu0, pgCpu1, w.mutations);
      int pushes = w.mutations / sizes.batchSize();
      long secondHalf = w.mutations - (long) (pushes / 2) * sizes.batchSize();
      boolean halved = half.at != 0; // a workload of one push has no half
      double secondHalfRate = halved ? secondHalf / ((ended - half.at) / 1e9) : 0;
      double secondHalfServerMicros = halved ? CpuTime.microsEach(half.serverCpu, serverCpu1, secondHalf) : serverMicros;
      double secondHalfPgMicros = halved ? CpuTime.microsEach(half.pgCpu, pgCpu1, secondHalf) : pgMicros;
      double firstHalfRate = halved ? (w.mutations - secondHalf) / ((half.at - ingestStart) / 1e9) : 0;
      CpuTime.Threads spent = threads0.isPresent() && threads1.isPresent() ? threads1.get().minus(threads0.get()) : new CpuTime.Threads(0, 0, 0);
      CpuTime.Threads spentLater = half.threads.isPresent() && threads1.isPresent() ? threads1.get().minus(half.threads.get())
          : new CpuTime.Threads(0, 0, 0);
      double heldMs = 1000 * locks.heldSeconds() / locks.writes();
      double waitMs = 1000 * locks.waitSeconds() / locks.writes();
      long heap = server.stopSampling();
      long rss = server.peakRss();
      require(first.applied() == w.mutations, "every mutation applied: " + first);
      progress(String.format(Locale.ROOT, "  %.0f mutations/s (%.1f s); peak heap %d MiB, peak RSS %d MiB", first.perSecond(), first.seconds(),
          heap >> 20, rss >> 20));
      progress(String.format(Locale.ROOT, "  the tenant's write lock: held %.1f ms and waited for %.1f ms per write; held %.0f %% of the time",
          heldMs, waitMs, 100 * locks.heldSeconds() / first.seconds()));
      progress(String.format(Locale.ROOT, "  CPU per mutation: server %.0f µs (its JIT compiler %.0f %% of it, its GC %.0f %%), PostgreSQL %.0f µs,"
          + " load generator %.0f µs (0: not measurable here)", serverMicros, share(spent.compiler(), spent.all()), share(spent.gc(), spent.all()),
          pgMicros, benchMicros));
      progress(String.format(Locale.ROOT, "  first half %.0f mutations/s; second half %.0f mutations/s, CPU per mutation: server %.0f µs"
          + " (JIT %.0f %%), PostgreSQL %.0f µs", firstHalfRate, secondHalfRate, secondHalfServerMicros,
          share(spentLater.compiler(), spentLater.all()), secondHalfPgMicros));
      if (onlyIngest) {
        progress("--only-ingest: stopping here; schema " + schema + " kept");
        server.close();
        System.exit(0);
      }
      long[] before = counts(url, schema, "bench");
      Ingest.Pass replay = Ingest.run(api, w);
      long[] after = counts(url, schema, "bench");
      require(replay.replayed() == w.mutations, "every retry replayed: " + replay);
      progress(String.format(Locale.ROOT, "  replay of the whole run: %.0f mutations/s, %d new rows", replay.perSecond(),
          (after[0] - before[0]) + (after[1] - before[1])));
      Limits.Rows rows = Limits.readPostgres(url, schema, "bench");
      java.util.OptionalDouble limitCpu0 = CpuTime.postgres();
      double copy = Limits.copyLimit(url, schema, rows, sizes.batchSize(), sizes.devices());
      double limitPgMicros = CpuTime.microsEach(limitCpu0, CpuTime.postgres(), w.mutations);
      double limitRate = w.mutations / copy;
      progress(String.format(Locale.ROOT, "  COPY limit: %.0f rows/s of the same rows -> ratio %.3f (PostgreSQL CPU %.0f µs for a mutation's two rows)", limitRate,
          first.perSecond() / limitRate, limitPgMicros));
      double[] verified = verifySeconds(w, "bench");
      double verify = verified[0];
      // What the CPU allows, whatever the locks: the cores this machine has, divided among the
      // CPU a mutation costs the server (compiled: the second half), PostgreSQL and this load
      // generator. And the same for a server that only verified signatures and did nothing else.
      int cores = Runtime.getRuntime().availableProcessors();
      // 0, as the CPU figures themselves, where /proc could not be read (not a division by 0).
      boolean cpuMeasured = serverMicros > 0 && pgMicros > 0;
      double cpuCeiling = cpuMeasured ? cores * 1e6 / (secondHalfServerMicros + pgMicros + benchMicros) / limitRate : 0;
      double verifyOnlyCeiling = cpuMeasured ? cores * 1e6 / (verify * 1e6 / w.mutations + pgMicros + benchMicros) / limitRate : 0;
      if (cpuMeasured) {
        report.ceiling("ingestVsCopyLimit", cpuCeiling, "ceiling at this run's CPU per mutation",
            "cores ÷ (server, compiled + PostgreSQL + load generator CPU per mutation) ÷ the COPY limit: every write overlapping");
        progress(String.format(Locale.ROOT, "  what the CPU allows: %.2f of the limit at these costs per mutation (server %.0f + PostgreSQL %.0f"
            + " + load %.0f µs on %d cores); %.2f if the server only verified signatures", cpuCeiling, secondHalfServerMicros, pgMicros,
            benchMicros, cores, verifyOnlyCeiling));
      }
      ObjectNode in = raw.putObject("ingest");
      in.put("mutations", w.mutations).put("seconds", first.seconds()).put("mutationsPerSecond", first.perSecond())
          .put("copyLimitSeconds", copy).put("copyLimitPerSecond", limitRate).put("replaySeconds", replay.seconds())
          .put("replayPerSecond", replay.perSecond()).put("replayNewRows", (after[0] - before[0]) + (after[1] - before[1]))
          .put("logRows", after[0]).put("recordRows", after[1]).put("verifyMicrosPerSignature", verify * 1e6 / w.mutations)
          .put("verifyShareOfIngestOneCore", verify / first.seconds()).put("singleVerifyMicrosPerSignature", verified[1] * 1e6)
          .put("jdkVerifyMicrosPerSignature", verified[2] * 1e6).put("peakHeapBytes", heap).put("peakRssBytes", rss)
          .put("requestBytes", first.requestBytes()).put("responseBytes", first.responseBytes())
          .put("pushes", pushes).put("lockHeldMsPerWrite", heldMs).put("lockWaitMsPerWrite", waitMs)
          .put("lockHeldShare", locks.heldSeconds() / first.seconds())
          .put("serverCpuMicrosPerMutation", serverMicros).put("postgresCpuMicrosPerMutation", pgMicros)
          .put("copyLimitPostgresCpuMicrosPerMutation", limitPgMicros)
          .put("serverJitCpuShare", share(spent.compiler(), spent.all()) / 100).put("serverGcCpuShare", share(spent.gc(), spent.all()) / 100)
          .put("firstHalfMutationsPerSecond", firstHalfRate).put("secondHalfMutationsPerSecond", secondHalfRate)
          .put("secondHalfServerCpuMicrosPerMutation", secondHalfServerMicros)
          .put("secondHalfServerJitCpuShare", share(spentLater.compiler(), spentLater.all()) / 100)
          .put("secondHalfPostgresCpuMicrosPerMutation", secondHalfPgMicros).put("benchCpuMicrosPerMutation", benchMicros)
          .put("cpuCeilingVsCopyLimit", cpuCeiling).put("verifyOnlyCpuCeilingVsCopyLimit", verifyOnlyCeiling);
      progress(String.format(Locale.ROOT, "  signature verification alone: %.1f µs each in a push's batch (one at a time: %.0f µs; the JDK's provider:"
          + " %.0f µs), %.0f%% of the ingest's time on one core", verify * 1e6 / w.mutations, verified[1] * 1e6, verified[2] * 1e6,
          100 * verify / first.seconds()));
      report.figure("ingestVsCopyLimit", first.perSecond() / limitRate);
      report.figure("peakHeapMiB", heap / 1048576.0);
      raw.put("peakRssMiB", rss / 1048576.0);

      progress("pull: initial sync of " + after[1] + " records in pages of " + sizes.pullPage());
      Api.Device fresh = api.devices("bench", 1).get(0);
      Pull.Comparison pc = Pull.compare(() -> Pull.http(api, fresh, sizes.pullPage(), false),
          () -> Pull.jdbc(url, schema + ".records", "bench", sizes.pullPage(), true));
      Pull.Download plain = pc.pull();
      Pull.Download select = pc.select();
      Pull.Download cold = pc.cold();
      Pull.Download gz = Pull.http(api, fresh, sizes.pullPage(), true);
      require(plain.changes() == after[1] && select.changes() == after[1], "whole feed read: " + plain + " " + select);
      progress(String.format(Locale.ROOT, "  %.0f changes/s (gzip %.0f) vs SELECT %.0f -> ratio %.3f", plain.perSecond(), gz.perSecond(),
          select.perSecond(), plain.perSecond() / select.perSecond()));
      ObjectNode pr = raw.putObject("pull");
      pr.put("changes", plain.changes()).put("seconds", plain.seconds()).put("changesPerSecond", plain.perSecond())
          .put("bodyBytes", plain.bodyBytes()).put("gzipSeconds", gz.seconds()).put("gzipChangesPerSecond", gz.perSecond())
          .put("gzipBodyBytes", gz.bodyBytes()).put("selectSeconds", select.seconds()).put("selectChangesPerSecond", select.perSecond())
          .put("coldChangesPerSecond", cold.perSecond()).put("warmUpPasses", Pull.WARM_UP_PASSES).put("measuredPasses", Pull.MEASURED_PASSES);
      pc.putPasses(pr);
      report.figure("pullVsSelect", plain.perSecond() / select.perSecond());
      if (onlyPull) {
        progress("--only-pull: stopping here");
        server.close();
        System.exit(0);
      }

      progress("wire: bytes per mutation through a counting proxy");
      Workload sample = new Workload("bench", api.devices("bench", 2), 3, sizes.batchSize(), 99);
      Wire.Sample ws = Wire.measure(server.uri(""), sample.all());
      ObjectNode wr = raw.putObject("wire");
      wr.put("mutations", ws.mutations()).put("bytesUp", ws.bytesUp()).put("bytesDown", ws.bytesDown())
          .put("bytesPerMutation", ws.perMutation()).put("gzipBytesPerMutation", ws.gzipPerMutation())
          .put("rawJsonBytesPerMutation", ws.rawOfMutations() / (double) ws.mutations())
          .put("gzip9BytesPerMutation", ws.gzip9OfMutations() / (double) ws.mutations());
      progress(String.format(Locale.ROOT, "  %.1f bytes/mutation on the wire (up %.1f, down %.1f) vs gzip %.1f (raw %.0f) -> ratio %.3f",
          ws.perMutation(), ws.bytesUp() / (double) ws.mutations(), ws.bytesDown() / (double) ws.mutations(), ws.gzipPerMutation(),
          ws.rawOfMutations() / (double) ws.mutations(), ws.perMutation() / ws.gzipPerMutation()));
      report.figure("wireVsGzip", ws.perMutation() / ws.gzipPerMutation());
      List<org.civicsync.contracts.Mutation> training = new java.util.ArrayList<>();
      for (Workload.Batch b : w.all().subList(0, Math.min(8, w.all().size()))) {
        training.addAll(b.mutations());
      }
      Wire.Zstd z = Wire.zstd(sample.all(), training, 16 * 1024);
      wr.putObject("zstd").put("dictionaryBytes", z.dictBytes()).put("trainingMutations", z.trainingMutations())
          .put("gzip9PerMutationBatch500", z.gzip9Per500()).put("zstd19PerMutationBatch500", z.zstdPer500())
          .put("dczPerMutationBatch500", z.dictPer500()).put("gzip9PerMutationBatch100", z.gzip9Per100())
          .put("zstd19PerMutationBatch100", z.zstdPer100()).put("dczPerMutationBatch100", z.dictPer100());
      progress(String.format(Locale.ROOT, "  zstd, body only, per mutation: batches of 500 gzip-9 %.1f, zstd-19 %.1f, with a %d-byte dictionary"
          + " %.1f; batches of 100: %.1f, %.1f, %.1f", z.gzip9Per500(), z.zstdPer500(), z.dictBytes(), z.dictPer500(), z.gzip9Per100(),
          z.zstdPer100(), z.dictPer100()));

      drains(api, raw);

      fanout(api, raw);
      return w;
    } finally {
      try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
        st.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
      }
    }
  }

  private void drains(Api api, ObjectNode raw) throws Exception {
    ObjectNode dr = raw.putObject("drain");
    Drain.Loopback loopback =
        Drain.loopback(api, "drain-loopback", work.resolve("devices"), sizes.drainMutations(), sizes.drainBatch(), DRAIN_SEED);
    dr.put("loopbackSeconds", loopback.seconds()).put("loopbackRequestSeconds", loopback.requestSeconds())
        .put("bytesUp", loopback.bytesUp()).put("bytesDown", loopback.bytesDown()).put("requests", loopback.requests());
    progress(String.format(Locale.ROOT, "drain: %d changes over loopback take %.1f s (device and server alone; %.1f s of it waiting for"
        + " answers), %d bytes up and %d down in %d requests", sizes.drainMutations(), loopback.seconds(), loopback.requestSeconds(),
        loopback.bytesUp(), loopback.bytesDown(), loopback.requests()));
    if (onlyDrainLoopback) {
      return;
    }
    // The two drains run at the same time, each a device of its own on a link of its own: they
    // spend nearly all their time waiting on their links, so together they take the time of the
    // longer one, and that time buys smaller time factors (see Sizes).
    progress("drain: " + sizes.drainMutations() + " queued changes over " + LinkProfile.TWO_G_RURAL.name() + " (time x" + sizes.factor2g()
        + ") and, at the same time, over " + LinkProfile.EDGE_LOSSY.name() + " (time x" + sizes.factorEdge() + "), batches of "
        + sizes.drainBatch());
    java.util.concurrent.ExecutorService two = java.util.concurrent.Executors.newFixedThreadPool(2);
    try {
      var twoG = two.submit(() -> Drain.run(api, "drain-2g", work.resolve("devices"), LinkProfile.TWO_G_RURAL, sizes.factor2g(),
          sizes.drainMutations(), sizes.drainBatch(), DRAIN_SEED, 5, loopback));
      var edge = two.submit(() -> Drain.run(api, "drain-edge", work.resolve("devices"), LinkProfile.EDGE_LOSSY, sizes.factorEdge(),
          sizes.drainMutations(), sizes.drainBatch(), DRAIN_SEED, 5, loopback));
      drain(dr, "drainEdgeVsLimit", edge.get());
      drain(dr, "drain2gVsLimit", twoG.get());
    } finally {
      two.shutdownNow();
    }
  }

  private void drain(ObjectNode raw, String figure, Drain.Result d) {
    double factor = d.factor();
    ObjectNode o = raw.putObject(d.profile());
    o.put("timeFactor", factor).put("mutations", d.mutations()).put("seconds", d.seconds()).put("limitSeconds", d.limitSeconds())
        .put("realSeconds", d.seconds() * factor).put("realLimitSeconds", d.limitSeconds() * factor)
        .put("lossyBytesUp", d.lossyBytesUp()).put("lossyBytesDown", d.lossyBytesDown()).put("resets", d.resets()).put("syncAttempts", d.attempts())
        .put("connections", d.connections());
    progress(String.format(Locale.ROOT, "  %s: %.1f s (real time %.0f s) vs limit %.1f s -> ratio %.3f; %d resets, %d connections, %d bytes up"
        + " (%.1f%% more than the limit's)", d.profile(), d.seconds(), d.seconds() * factor, d.limitSeconds(), d.ratio(), d.resets(),
        d.connections(), d.lossyBytesUp(),
        100.0 * (d.lossyBytesUp() - d.limitBytesUp()) / d.limitBytesUp()));
    report.figure(figure, d.ratio());
  }

  // ---------------------------------------------------------------- SQLite: figures 1 and 2 on the default store

  private void sqliteFigures() throws Exception {
    Path data = work.resolve("sqlite");
    ObjectNode raw = report.raw.putObject("sqlite");
    try (ServerProcess server = new ServerProcess(data, List.of("--data", data.toString()), "256m")) {
      Api api = new Api(server.uri(""));
      api.tenant("bench");
      Workload w = new Workload("bench", api.devices("bench", sizes.devices()), sizes.sqliteBatchesPerDevice(), sizes.batchSize(), 2);
      progress("SQLite ingest: " + w.mutations + " mutations");
      server.startSampling();
      Ingest.Pass first = Ingest.run(api, w);
      long heap = server.stopSampling();
      require(first.applied() == w.mutations, "every mutation applied: " + first);
      Ingest.Pass replay = Ingest.run(api, w);
      require(replay.replayed() == w.mutations, "every retry replayed: " + replay);
      Path file = data.resolve("civicsync.db");
      double limit = Limits.sqliteLimit(file, work.resolve("sqlite-limit.db"), "bench", sizes.batchSize());
      double limitRate = w.mutations / limit;
      progress(String.format(Locale.ROOT, "  %.0f mutations/s vs INSERT OR IGNORE limit %.0f -> ratio %.3f; replay %.0f/s", first.perSecond(),
          limitRate, first.perSecond() / limitRate, replay.perSecond()));
      Api.Device fresh = api.devices("bench", 1).get(0);
      Pull.Comparison pc = Pull.compare(() -> Pull.http(api, fresh, sizes.pullPage(), false),
          () -> Pull.jdbc("jdbc:sqlite:file:" + file + "?mode=ro", "records", "bench", sizes.pullPage(), false));
      Pull.Download plain = pc.pull();
      Pull.Download select = pc.select();
      progress(String.format(Locale.ROOT, "  pull %.0f changes/s vs SELECT %.0f -> ratio %.3f", plain.perSecond(), select.perSecond(),
          plain.perSecond() / select.perSecond()));
      raw.put("mutations", w.mutations).put("ingestSeconds", first.seconds()).put("ingestPerSecond", first.perSecond())
          .put("insertLimitSeconds", limit).put("insertLimitPerSecond", limitRate).put("ingestVsInsertLimit", first.perSecond() / limitRate)
          .put("replayPerSecond", replay.perSecond()).put("peakHeapBytes", heap).put("peakRssBytes", server.peakRss())
          .put("pullChanges", plain.changes()).put("pullPerSecond", plain.perSecond()).put("selectPerSecond", select.perSecond())
          .put("pullVsSelect", plain.perSecond() / select.perSecond()).put("pullColdPerSecond", pc.cold().perSecond());
      pc.putPasses(raw.putObject("pull"));
    }
  }

  // ---------------------------------------------------------------- the peer: figure 6

  private void pouchFigures(Optional<Path> bin, Workload pg) throws Exception {
    ObjectNode raw = report.raw.putObject("pouchdb");
    if (bin.isEmpty()) {
      raw.put("skipped", "pouchdb-server is not installed (bench/run installs it into bench/.scratch/pouchdb)");
      progress("pouchdb-server: not installed, skipped");
      return;
    }
    try (Pouch p = new Pouch(bin.get(), work.resolve("pouchdb"))) {
      String version = p.version();
      // The same documents in the same batches: the first of the ingest's batches of every device.
      Workload docs = pg.first(sizes.pouchBatchesPerDevice());
      progress("pouchdb-server " + version + ": " + docs.mutations + " documents through _bulk_docs, then _changes");
      Pouch.Result r = p.run(docs, sizes.devices(), sizes.pullPage());
      double oursIn = report.raw.at("/postgres/ingest/mutationsPerSecond").asDouble();
      // Like with like: the peer's pull is one pass from cold, so ours is our first (cold) pass.
      double oursOut = report.raw.at("/postgres/pull/coldChangesPerSecond").asDouble();
      raw.put("version", version).put("docs", r.docs()).put("ingestSeconds", r.ingestSeconds()).put("ingestPerSecond", r.ingestPerSecond())
          .put("pulled", r.pulled()).put("pullSeconds", r.pullSeconds()).put("pullPerSecond", r.pullPerSecond())
          .put("note", "pouchdb-server on LevelDB does not fsync per batch; ours commits every push durably");
      progress(String.format(Locale.ROOT, "  ingest %.0f docs/s (ours %.0f -> %.2fx), pull %.0f docs/s (ours %.0f -> %.2fx)",
          r.ingestPerSecond(), oursIn, oursIn / r.ingestPerSecond(), r.pullPerSecond(), oursOut, oursOut / r.pullPerSecond()));
      report.figure("ingestVsPouchdb", oursIn / r.ingestPerSecond());
      // Our push cannot outrun PostgreSQL's own idempotent bulk load of the same rows (figure 1's
      // limit, measured in this run), so that limit over the peer's rate caps this figure.
      double limit = report.raw.at("/postgres/ingest/copyLimitPerSecond").asDouble();
      if (limit > 0) {
        raw.put("ingestCeilingVsPouchdb", limit / r.ingestPerSecond());
        report.ceiling("ingestVsPouchdb", limit / r.ingestPerSecond(), "ceiling at the COPY limit",
            "PostgreSQL's COPY limit of this run ÷ the peer's ingest: what the figure would be at ingestVsCopyLimit 1.0");
        progress(String.format(Locale.ROOT, "  the ingest figure's ceiling: PostgreSQL's COPY limit %.0f rows/s ÷ the peer -> %.2fx",
            limit, limit / r.ingestPerSecond()));
      }
      report.figure("pullVsPouchdb", oursOut / r.pullPerSecond());
    }
  }

  /** Figure 5 on the running server: live streams against a bare broadcaster. */
  private void fanout(Api api, ObjectNode raw) throws Exception {
      progress("fan-out: " + sizes.subscribers() + " live streams, " + sizes.commits() + " commits");
      api.tenant("fanout");
      Fanout.Result f = Fanout.run(api, "fanout", sizes.subscribers(), sizes.commits());
      ObjectNode fr = raw.putObject("fanout");
      fr.put("subscribers", f.subscribers()).put("commits", f.commits()).put("p50Ms", f.p50Ms()).put("p99Ms", f.p99Ms()).put("maxMs", f.maxMs())
          .put("bareP50Ms", f.bareP50Ms()).put("bareP99Ms", f.bareP99Ms()).put("bareMaxMs", f.bareMaxMs())
          .put("pushToNoticeP50Ms", f.pushToNoticeP50Ms()).put("pushToNoticeP99Ms", f.pushToNoticeP99Ms()).put("missed", f.missed());
      progress(String.format(Locale.ROOT, "  from commit: p50 %.1f ms, p99 %.1f ms (bare broadcaster p99 %.1f ms) -> ratio %.2f; from before the"
          + " push is sent: p99 %.1f ms; %d notices missed", f.p50Ms(), f.p99Ms(), f.bareP99Ms(), f.ratio(), f.pushToNoticeP99Ms(), f.missed()));
      report.figure("fanoutP99Ms", f.p99Ms());
      report.figure("fanoutVsBare", f.ratio());
  }

  // ---------------------------------------------------------------- helpers

  /**
   * Seconds to verify every signature of the workload on one core the way the server does (each
   * push's signatures as one batch: {@code SignatureCheck.verifyAll}, canonical forms included), and,
   * on samples, one at a time with Bouncy Castle and with the JDK's provider for comparison:
   * {verify all as the server does, Bouncy Castle seconds per signature, JDK seconds per signature}.
   */
  private static double[] verifySeconds(Workload w, String tenant) {
    org.civicsync.server.push.SignatureCheck check = new org.civicsync.server.push.SignatureCheck();
    List<Workload.Batch> batches = w.all();
    java.util.function.ToIntFunction<Workload.Batch> asServer = b -> {
      List<Mutation> ms = b.mutations();
      byte[][] canonical = new byte[ms.size()][];
      for (int i = 0; i < ms.size(); i++) {
        canonical[i] = org.civicsync.core.canonical.Jcs.canonicalBytes(Envelopes.unsigned(ms.get(i)));
      }
      int good = 0;
      for (boolean ok : check.verifyAll(ms, canonical, tenant, b.device().id(), b.device().keys().publicKey(), false)) {
        good += ok ? 1 : 0;
      }
      return good;
    };
    int warm = Math.min(8, batches.size());
    for (int i = 0; i < warm; i++) {
      asServer.applyAsInt(batches.get(i));
    }
    // A sample is enough for a cost per signature; scaled to the whole workload.
    int measured = Math.min(100, batches.size());
    int signatures = 0;
    long t0 = System.nanoTime();
    for (int i = 0; i < measured; i++) {
      Workload.Batch b = batches.get(i);
      if (asServer.applyAsInt(b) != b.mutations().size()) {
        throw new IllegalStateException("a signature of the workload does not verify");
      }
      signatures += b.mutations().size();
    }
    double serverSeconds = (System.nanoTime() - t0) / 1e9 * w.mutations / signatures;
    List<Mutation> sample = batches.get(0).mutations();
    Api.Device who = batches.get(0).device();
    java.util.function.IntPredicate single = i -> check.verify(sample.get(i), tenant, who.id(), who.keys().publicKey());
    for (int round = 0; round < 4; round++) {
      for (int i = 0; i < sample.size(); i++) {
        single.test(i);
        Envelopes.verify(sample.get(i), tenant, who.id(), who.keys().publicKey());
      }
    }
    long t1 = System.nanoTime();
    for (int round = 0; round < 4; round++) {
      for (int i = 0; i < sample.size(); i++) {
        single.test(i);
      }
    }
    double bcEach = (System.nanoTime() - t1) / 1e9 / (4.0 * sample.size());
    long t2 = System.nanoTime();
    for (int i = 0; i < sample.size(); i++) {
      Envelopes.verify(sample.get(i), tenant, who.id(), who.keys().publicKey());
    }
    return new double[] {serverSeconds, bcEach, (System.nanoTime() - t2) / 1e9 / sample.size()};
  }

  /** Percent of {@code whole}; 0 when nothing was measured. */
  private static double share(double part, double whole) {
    return whole > 0 ? 100 * part / whole : 0;
  }

  /** The readings taken when the first half of the ingest's pushes had been answered. */
  private static final class Halfway {
    volatile long at;
    volatile java.util.OptionalDouble serverCpu = java.util.OptionalDouble.empty();
    volatile java.util.OptionalDouble pgCpu = java.util.OptionalDouble.empty();
    volatile java.util.Optional<CpuTime.Threads> threads = java.util.Optional.empty();

    void read(long serverPid) {
      at = System.nanoTime();
      serverCpu = CpuTime.of(serverPid);
      pgCpu = CpuTime.postgres();
      threads = CpuTime.threads(serverPid);
    }
  }

  /** Committed writes, and the seconds they held and waited for their tenant's lock (the server's metrics, one scrape). */
  private record WriteLocks(double writes, double heldSeconds, double waitSeconds) {
    static WriteLocks read(Api api) throws Exception {
      String m = api.metrics();
      return new WriteLocks(Api.sample(m, "civicsync_store_write_held_seconds_count"), Api.sample(m, "civicsync_store_write_held_seconds_sum"),
          Api.sample(m, "civicsync_store_write_wait_seconds_sum"));
    }

    WriteLocks minus(WriteLocks earlier) {
      return new WriteLocks(writes - earlier.writes, heldSeconds - earlier.heldSeconds, waitSeconds - earlier.waitSeconds);
    }
  }

  private static long[] counts(String url, String schema, String tenant) throws Exception {
    try (Connection c = DriverManager.getConnection(url); Statement st = c.createStatement()) {
      return new long[] {Long.parseLong(one(st, "SELECT count(*) FROM " + schema + ".mutation_log WHERE tenant_id = '" + tenant + "'")),
          Long.parseLong(one(st, "SELECT count(*) FROM " + schema + ".records WHERE tenant_id = '" + tenant + "'"))};
    }
  }

  private static String one(Statement st, String sql) throws Exception {
    try (ResultSet rs = st.executeQuery(sql)) {
      rs.next();
      return rs.getString(1);
    }
  }

  /** The configured PostgreSQL, the machine's own if it answers, or an embedded one. */
  private static String postgres() {
    for (String env : List.of("CIVICSYNC_BENCH_PG_URL", "CIVICSYNC_TEST_PG_URL")) {
      String v = System.getenv(env);
      if (v != null && !v.isBlank()) {
        return v.trim();
      }
    }
    String local = "jdbc:postgresql://127.0.0.1:5432/test?user=postgres&connectTimeout=2";
    try (Connection c = DriverManager.getConnection(local)) {
      return local;
    } catch (Exception none) {
      progressStatic("no PostgreSQL at 127.0.0.1:5432: starting an embedded one");
      return org.civicsync.testing.TestPostgres.jdbcUrl();
    }
  }

  private void machine() throws Exception {
    ObjectNode m = report.machine;
    m.put("date", Instant.now().toString()).put("cores", Runtime.getRuntime().availableProcessors())
        .put("os", System.getProperty("os.name") + " " + System.getProperty("os.version")).put("java", System.getProperty("java.vm.name") + " "
            + System.getProperty("java.version"));
    try {
      for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
        if (line.startsWith("model name")) {
          m.put("cpu", line.substring(line.indexOf(':') + 1).trim());
          break;
        }
      }
      for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
        if (line.startsWith("MemTotal")) {
          m.put("memoryMiB", Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024);
        }
      }
    } catch (java.io.IOException notLinux) {
      m.put("cpu", "unknown");
    }
    progress("machine: " + m);
  }

  private static void require(boolean ok, String what) {
    if (!ok) {
      throw new IllegalStateException("benchmark check failed: " + what);
    }
  }

  private void progress(String line) {
    System.out.printf(Locale.ROOT, "[%5.1f s] %s%n", (System.nanoTime() - started) / 1e9, line);
    System.out.flush();
  }

  private static void progressStatic(String line) {
    System.out.println(line);
  }
}
