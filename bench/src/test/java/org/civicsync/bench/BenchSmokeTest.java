package org.civicsync.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.civicsync.core.json.Json;
import org.civicsync.testing.TestPostgres;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The benchmark suite on tiny sizes, every figure, so that the harness never rots: it is not a
 * measurement (the sizes are far too small to mean anything) and asserts no speed, only that
 * every figure is measured and written.
 */
class BenchSmokeTest {
  @Test
  void everyFigureIsMeasuredAndWrittenOnTinySizes(@TempDir Path dir) throws Exception {
    Optional<Path> pouch = Pouch.find(Path.of("..", "bench", ".scratch", "pouchdb").toAbsolutePath().normalize())
        .or(() -> Pouch.find(Path.of(".scratch", "pouchdb").toAbsolutePath()));
    if (pouch.isEmpty() && "1".equals(System.getenv("CIVICSYNC_REQUIRE_PEER"))) {
      throw new AssertionError("pouchdb-server is not installed and CIVICSYNC_REQUIRE_PEER=1: run bench/install-peer");
    }
    if (pouch.isEmpty()) {
      System.err.println("\n*** BenchSmokeTest: pouchdb-server is not installed (bench/install-peer): the peer figures are skipped ***\n");
    }
    Report r = new BenchMain(BenchMain.Sizes.SMOKE, dir.resolve("work")).run(Optional.of(TestPostgres.jdbcUrl()), pouch);
    r.write(dir.resolve("out"));

    JsonNode json = Json.mapper().readTree(dir.resolve("out").resolve("latest.json").toFile());
    for (String figure : Report.GOALS.keySet()) {
      if (pouch.isEmpty() && figure.endsWith("Pouchdb")) {
        continue;
      }
      assertThat(json.at("/figures/" + figure).isNumber()).as(figure + " in " + json.get("figures")).isTrue();
      assertThat(json.at("/figures/" + figure).asDouble()).as(figure).isPositive();
    }
    if (pouch.isPresent()) {
      assertThat(json.at("/ceilings/ingestVsPouchdb/value").asDouble()).as("the peer ingest's ceiling, from the COPY limit")
          .isEqualTo(json.at("/raw/pouchdb/ingestCeilingVsPouchdb").asDouble(), org.assertj.core.data.Offset.offset(0.001))
          .isPositive();
    }
    assertThat(json.at("/raw/postgres/ingest/replayNewRows").asLong()).as("a replay of the run writes nothing").isZero();
    assertThat(json.at("/raw/fanout/missed").asLong()).as("every subscriber heard every commit").isZero();
    assertThat(json.at("/machine/cores").asInt()).isPositive();
    assertThat(Files.size(dir.resolve("out").resolve("latest.png"))).isGreaterThan(1000);
    assertThat(Files.readString(dir.resolve("out").resolve("latest.md"))).contains("ingestVsCopyLimit");
  }
}
