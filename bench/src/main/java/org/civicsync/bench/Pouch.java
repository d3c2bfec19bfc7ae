package org.civicsync.bench;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;

/**
 * Figure 6's peer: pouchdb-server (installed from npm by {@code bench/run} into a scratch
 * directory) on its default LevelDB storage, fed the same documents — each appointment as a
 * document whose {@code _id} is the record id — through {@code _bulk_docs} in batches of the same
 * size with the same number of concurrent writers, and read back through {@code
 * _changes?include_docs=true} in pages of the same size. It does not fsync per batch.
 */
final class Pouch implements AutoCloseable {
  record Result(int docs, double ingestSeconds, long pulled, double pullSeconds) {
    double ingestPerSecond() {
      return docs / ingestSeconds;
    }

    double pullPerSecond() {
      return pulled / pullSeconds;
    }
  }

  private final Process process;
  private final URI base;
  private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

  /** Starts {@code bin} (the pouchdb-server executable) on a free port with its data under {@code dir}. */
  Pouch(Path bin, Path dir) throws Exception {
    int port = ServerProcess.freePort();
    Files.createDirectories(dir);
    ProcessBuilder pb = new ProcessBuilder(bin.toString(), "--port", Integer.toString(port), "--host", "127.0.0.1", "--dir", dir.toString(),
        "--no-stdout-logs");
    pb.directory(dir.toFile()).redirectErrorStream(true).redirectOutput(dir.resolve("pouchdb-server.log").toFile());
    process = pb.start();
    base = URI.create("http://127.0.0.1:" + port + "/");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (true) {
      try {
        if (http.send(HttpRequest.newBuilder(base).build(), HttpResponse.BodyHandlers.ofString()).statusCode() == 200) {
          break;
        }
      } catch (IOException notYet) {
        // starting
      }
      if (System.nanoTime() > deadline || !process.isAlive()) {
        throw new IllegalStateException("pouchdb-server did not start; see " + dir.resolve("pouchdb-server.log"));
      }
      Thread.sleep(200);
    }
  }

  /** The version pouchdb-server reports. */
  String version() throws Exception {
    return Json.mapper().readTree(http.send(HttpRequest.newBuilder(base).build(), HttpResponse.BodyHandlers.ofString()).body())
        .path("version").asText();
  }

  Result run(Workload w, int writers, int pageSize) throws Exception {
    String db = "appointments";
    http.send(HttpRequest.newBuilder(base.resolve(db)).PUT(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
    // The same documents: each batch's records, in the same batches.
    List<byte[]> bodies = new ArrayList<>();
    for (Workload.Batch b : w.all()) {
      ObjectNode req = Json.mapper().createObjectNode();
      ArrayNode docs = req.putArray("docs");
      for (Mutation m : b.mutations()) {
        ObjectNode doc = m.data().deepCopy();
        doc.put("_id", m.recordId().toString());
        docs.add(doc);
      }
      bodies.add(Workload.json(req));
    }
    AtomicInteger next = new AtomicInteger();
    double ingest = Workers.run(writers, false, "pouchdb ingest", writer -> {
      for (int b = next.getAndIncrement(); b < bodies.size(); b = next.getAndIncrement()) {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(db + "/_bulk_docs")).header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofByteArray(bodies.get(b))).build(), HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) {
          throw new IllegalStateException("_bulk_docs answered " + r.statusCode() + ": " + r.body());
        }
      }
    });
    long t1 = System.nanoTime();
    String since = "0";
    long pulled = 0;
    while (true) {
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(db + "/_changes?include_docs=true&limit=" + pageSize
          + "&since=" + java.net.URLEncoder.encode(since, StandardCharsets.UTF_8))).build(), HttpResponse.BodyHandlers.ofString());
      String body = r.body();
      int n = Ingest.count(body, "\"doc\":");
      pulled += n;
      int i = body.lastIndexOf("\"last_seq\":") + "\"last_seq\":".length();
      String rest = body.substring(i).trim();
      since = rest.startsWith("\"") ? rest.substring(1, rest.indexOf('"', 1)) : rest.replaceAll("[^0-9].*", "");
      if (n < pageSize) {
        break;
      }
    }
    return new Result(w.mutations, ingest, pulled, (System.nanoTime() - t1) / 1e9);
  }

  /** The pouchdb-server executable under a scratch directory where {@code npm install pouchdb-server} ran, if there. */
  static java.util.Optional<Path> find(Path scratch) {
    Path bin = scratch.resolve("node_modules").resolve(".bin").resolve("pouchdb-server");
    return Files.isExecutable(bin) ? java.util.Optional.of(bin) : java.util.Optional.empty();
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(10, TimeUnit.SECONDS)) {
      process.destroyForcibly();
    }
    process.descendants().forEach(ProcessHandle::destroyForcibly);
  }

}
