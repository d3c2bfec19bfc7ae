package org.civicsync.client.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.RecordQuery;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A transaction that returned survives the process being killed (SIGKILL) right after: a child
 * JVM commits transactions in a loop, printing {@code committed n} after each; the test kills it
 * as soon as it reads {@code committed 200} and then finds every one of those transactions whole
 * in the file (and no transaction half there).
 */
class DurabilityTest {
  static final int KILL_AFTER = 200;

  @TempDir
  Path dir;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"plaintext", "encrypted"})
  void committedTransactionsSurviveKillDashNine(String mode) throws Exception {
    Path file = dir.resolve("device.db");
    byte[] key = new byte[32];
    new SecureRandom().nextBytes(key);
    String keyArg = mode.equals("plaintext") ? "-" : HexFormat.of().formatHex(key);
    Path stderr = dir.resolve("child.err");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    ProcessBuilder pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx256m",
        "-cp", System.getProperty("java.class.path"), DurabilityChild.class.getName(), file.toString(), keyArg)
        .redirectError(stderr.toFile());
    Process child = pb.start();
    int lastSeen = 0;
    try {
      lastSeen = Assertions.assertTimeoutPreemptively(Duration.ofSeconds(20), () -> {
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
          String line;
          while ((line = out.readLine()) != null) {
            if (line.startsWith("committed ")) {
              int n = Integer.parseInt(line.substring("committed ".length()));
              if (n >= KILL_AFTER) {
                child.destroyForcibly(); // SIGKILL, right after the transaction returned
                return n;
              }
            }
          }
        }
        throw new AssertionError("the child ended before committing " + KILL_AFTER + ": " + Files.readString(stderr));
      }, () -> "child stderr: " + read(stderr));
    } finally {
      child.destroyForcibly();
      assertThat(child.waitFor(10, TimeUnit.SECONDS)).isTrue();
    }
    assertThat(child.exitValue()).as("killed, not ended").isNotZero();

    try (SqliteLocalStore store = mode.equals("plaintext") ? SqliteLocalStore.open(file)
        : SqliteLocalStore.open(file, AtRestCipher.withKey(key))) {
      int seen = lastSeen;
      store.transaction(tx -> {
        int last = Integer.parseInt(tx.setting("last").orElseThrow());
        // Everything that returned is there; the killed process may have committed more before
        // dying (between the print and the kill), never less.
        assertThat(last).isGreaterThanOrEqualTo(seen);
        System.out.printf("%s: killed after reading 'committed %d'; the file holds %d transactions%n", mode, seen, last);
        List<LocalRecord> records = tx.query(RecordQuery.all("visits"));
        List<OutboxEntry> entries = tx.entries(EnumSet.allOf(EntryState.class), Integer.MAX_VALUE);
        // Each transaction is whole: as many records and entries as the last counter says.
        assertThat(records).hasSize(last);
        assertThat(entries).hasSize(last);
        List<Long> expectedSeqs = new ArrayList<>();
        for (long i = 1; i <= last; i++) {
          expectedSeqs.add(i);
          assertThat(tx.record("visits", Fixtures.id((int) i))).isPresent();
        }
        assertThat(AbstractLocalStoreTest.seqs(entries)).isEqualTo(expectedSeqs);
        return null;
      });
    }
  }

  private static String read(Path p) {
    try {
      return Files.exists(p) ? Files.readString(p) : "";
    } catch (java.io.IOException e) {
      return e.toString();
    }
  }
}
