package org.civicsync.bench;

import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The server under test, started as a child process of the same code ({@code serve} of the server
 * app's main class, on this JVM's class path) so that its heap, RSS and CPU are its own. While it
 * runs, a sampler reads its used heap from {@code /metrics} and its peak RSS ({@code VmHWM}) from
 * {@code /proc}.
 */
final class ServerProcess implements AutoCloseable {
  static final String ADMIN = "csa_bench-admin-token-000000000000000000000000";

  private final Process process;
  private final int port;
  private final Path log;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private final Path gcLog;
  private long gcLogOffset;

  /**
   * @param storeArgs {@code --data DIR} for SQLite, or {@code --db-url … --db-schema …}
   * @param heap the {@code -Xmx} value, e.g. {@code 256m}
   */
  ServerProcess(Path dir, List<String> storeArgs, String heap) throws Exception {
    this.port = freePort();
    Files.createDirectories(dir);
    this.log = dir.resolve("server-" + port + ".log");
    this.gcLog = dir.resolve("gc-" + port + ".log");
    // The heap's peak is read from the GC log (the heap in use just before each collection),
    // which costs the server nothing; polling its metrics often enough to catch peaks did (4 % of
    // its CPU in a profile of the ingest).
    // Compiler threads kept for the server's life, so that the CPU the JIT used can be read from
    // them at the end (CpuTime.threads): by default HotSpot stops idle ones, and their time with them.
    List<String> cmd = new ArrayList<>(List.of(java(), "-Xmx" + heap, "--enable-native-access=ALL-UNNAMED", "-Xlog:gc:file=" + gcLog,
        "-XX:-UseDynamicNumberOfCompilerThreads"));
    // For profiling a figure: CIVICSYNC_BENCH_JFR=<file> records the server with Java Flight Recorder.
    String jfr = System.getenv("CIVICSYNC_BENCH_JFR");
    if (jfr != null && !jfr.isBlank()) {
      cmd.add("-XX:FlightRecorderOptions:stackdepth=256");
      // CIVICSYNC_BENCH_JFR_SETTINGS=<file.jfc> for other settings (a shorter sampling period, say).
      String settings = java.util.Optional.ofNullable(System.getenv("CIVICSYNC_BENCH_JFR_SETTINGS")).orElse("profile");
      cmd.add("-XX:StartFlightRecording=filename=" + jfr + ",settings=" + settings + ",dumponexit=true");
    }
    // For trying a JVM option on the server alone (a collector, a system property) side by side
    // with the default: CIVICSYNC_BENCH_SERVER_OPTS="-XX:+UseZGC", options split at spaces.
    String extra = System.getenv("CIVICSYNC_BENCH_SERVER_OPTS");
    if (extra != null && !extra.isBlank()) {
      cmd.addAll(List.of(extra.trim().split("\\s+")));
    }
    cmd.addAll(List.of("-cp",
        System.getProperty("java.class.path"), "org.civicsync.server.app.Main", "serve", "--host", "127.0.0.1", "--port",
        Integer.toString(port), "--rate-limit", "100000000", "--max-body-bytes", Long.toString(64L << 20)));
    cmd.addAll(storeArgs);
    ProcessBuilder pb = new ProcessBuilder(cmd);
    pb.environment().put("CIVICSYNC_ADMIN_TOKEN", ADMIN);
    pb.environment().put("CIVICSYNC_LOG_FORMAT", "text");
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    process = pb.start();
    // A bench stopped early (Ctrl-C, a timeout) must not leave its server running and holding
    // database connections.
    Process child = process;
    Runtime.getRuntime().addShutdownHook(new Thread(child::destroy));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    while (true) {
      try {
        if (http.send(HttpRequest.newBuilder(uri("/health/ready")).build(), HttpResponse.BodyHandlers.ofString()).statusCode() == 200) {
          return;
        }
      } catch (IOException notYet) {
        // still starting
      }
      if (System.nanoTime() > deadline || !process.isAlive()) {
        throw new IllegalStateException("the server did not start; see " + log);
      }
      Thread.sleep(100);
    }
  }

  int port() {
    return port;
  }

  URI uri(String path) {
    return URI.create("http://127.0.0.1:" + port + path);
  }

  long pid() {
    return process.pid();
  }

  /** Marks the start of a measured phase for {@link #peakHeapSince}. */
  void startSampling() throws IOException {
    gcLogOffset = Files.exists(gcLog) ? Files.size(gcLog) : 0;
  }

  /**
   * The peak heap in use since {@link #startSampling}: the largest "before" figure of the
   * collections logged since then, or the heap in use now if that is larger, in bytes.
   */
  long stopSampling() throws Exception {
    long peak = usedHeap();
    if (Files.exists(gcLog)) {
      String text = Files.readString(gcLog);
      java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)([KMG])->\\d+[KMG]\\(")
          .matcher(text.substring((int) Math.min(gcLogOffset, text.length())));
      while (m.find()) {
        long v = Long.parseLong(m.group(1)) << switch (m.group(2)) {
          case "K" -> 10;
          case "M" -> 20;
          default -> 30;
        };
        peak = Math.max(peak, v);
      }
    }
    return peak;
  }

  /** The heap in use now, summed over the heap's pools, from the server's Prometheus metrics. */
  long usedHeap() throws Exception {
    return (long) metric("jvm_memory_used_bytes", "area=\"heap\"");
  }

  /** The sum of the samples of a metric whose label set contains {@code labelPart}. */
  double metric(String name, String labelPart) throws Exception {
    String text = http.send(HttpRequest.newBuilder(uri("/metrics")).header("Authorization", "Bearer " + ADMIN).build(),
        HttpResponse.BodyHandlers.ofString()).body();
    double sum = 0;
    for (String line : text.split("\n")) {
      if (line.startsWith(name) && (line.charAt(name.length()) == '{' || line.charAt(name.length()) == ' ')
          && (labelPart.isEmpty() || line.contains(labelPart))) {
        sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  /** The process's peak resident set size so far ({@code VmHWM}), in bytes; -1 where /proc is not there. */
  long peakRss() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(process.pid()), "status"))) {
        if (line.startsWith("VmHWM:")) {
          return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        }
      }
    } catch (IOException e) {
      return -1;
    }
    return -1;
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static String java() {
    return System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
  }
}
