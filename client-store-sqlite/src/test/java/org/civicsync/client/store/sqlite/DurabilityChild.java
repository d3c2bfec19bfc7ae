package org.civicsync.client.store.sqlite;

import java.nio.file.Path;
import java.util.HexFormat;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.outbox.EntryState;

/**
 * Run by {@link DurabilityTest} in a child JVM: commits transactions one after another, each a
 * record, its outbox entry and the "last" setting, and prints {@code committed <n>} after each
 * returned, until it is killed.
 *
 * <p>Arguments: the database file, then the key in hex or {@code -} for a plaintext file.
 */
public final class DurabilityChild {
  private DurabilityChild() {}

  public static void main(String[] args) {
    Path file = Path.of(args[0]);
    SqliteLocalStore store = "-".equals(args[1])
        ? SqliteLocalStore.open(file)
        : SqliteLocalStore.open(file, AtRestCipher.withKey(HexFormat.of().parseHex(args[1])));
    System.out.println("open");
    System.out.flush();
    for (int n = 1; n < 1_000_000; n++) {
      int i = n;
      store.transaction(tx -> {
        tx.putRecord(Fixtures.record("visits", Fixtures.id(i), "{\"n\":" + i + ",\"patientName\":\"Nimali Perera\"}"));
        tx.putEntry(Fixtures.entry(i, "visits", Fixtures.id(i), EntryState.PENDING));
        tx.putSetting("last", Integer.toString(i));
        return null;
      });
      System.out.println("committed " + n);
      System.out.flush();
    }
    // Never closed: the test kills this process.
  }
}
