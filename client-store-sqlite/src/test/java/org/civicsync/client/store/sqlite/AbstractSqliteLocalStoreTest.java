package org.civicsync.client.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.civicsync.client.store.sqlite.Fixtures.T0;
import static org.civicsync.client.store.sqlite.Fixtures.entry;
import static org.civicsync.client.store.sqlite.Fixtures.id;
import static org.civicsync.client.store.sqlite.Fixtures.json;
import static org.civicsync.client.store.sqlite.Fixtures.record;

import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.LocalTx;
import org.civicsync.client.store.RecordQuery;
import org.junit.jupiter.api.Test;

/** The shared suite plus what only a store on a file has: reopening, locking, constraints. */
abstract class AbstractSqliteLocalStoreTest extends AbstractLocalStoreTest {
  /** Opens (creating if needed) the file the way this variant does (plaintext, or its key). */
  abstract SqliteLocalStore openFile(Path file);

  Path file() {
    return dir.resolve("local.db");
  }

  @Override
  LocalStore newStore(Path dir) {
    return openFile(dir.resolve("local.db"));
  }

  void reopen() {
    store.close();
    store = openFile(file());
  }

  @Test
  void everythingSurvivesReopening() {
    LocalRecord a = new LocalRecord("appointments", id(1), 3, json("{\"patientName\":\"A\",\"n\":1}"),
        json("{\"patientName\":\"A\",\"n\":2}"), true, T0);
    LocalRecord b = record("appointments", id(2), null);
    OutboxEntry e1 = entry(1, "appointments", id(1), EntryState.PENDING);
    OutboxEntry e2 = new OutboxEntry(entry(2, "appointments", id(1), EntryState.CONFLICT).mutation(), EntryState.CONFLICT,
        Optional.of(Fixtures.results(entry(2, "appointments", id(1), EntryState.CONFLICT).mutationId(), id(1)).get(3)), 2, T0,
        T0.plusSeconds(9));
    store.transaction(tx -> {
      tx.putRecord(a);
      tx.putRecord(b);
      tx.putEntry(e1);
      tx.putEntry(e2);
      tx.putSetting("pull.cursor", "abc");
      return null;
    });
    reopen();
    reopen();
    store.transaction(tx -> {
      assertThat(tx.record("appointments", id(1))).contains(a);
      assertThat(tx.record("appointments", id(2))).contains(b);
      assertThat(tx.query(RecordQuery.all("appointments"))).containsExactly(a);
      assertThat(tx.dirtyRecords()).containsExactlyInAnyOrder(a, b);
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 10)).containsExactly(e1, e2);
      assertThat(tx.countByState()).isEqualTo(Map.of(EntryState.PENDING, 1L, EntryState.CONFLICT, 1L));
      assertThat(tx.setting("pull.cursor")).contains("abc");
      return null;
    });
  }

  @Test
  void theFileIsInWalModeWithFullSync() {
    SqliteLocalStore s = (SqliteLocalStore) store;
    assertThat(s.pragma("journal_mode")).isEqualTo("wal");
    assertThat(s.pragma("synchronous")).isEqualTo("2"); // FULL
    assertThat(Integer.parseInt(s.pragma("busy_timeout"))).isEqualTo(SqliteLocalStore.BUSY_TIMEOUT_MS);
    assertThat(s.pragma("secure_delete")).isEqualTo("1");
  }

  @Test
  void transactionsDoNotNest() {
    store.transaction(tx -> {
      tx.putSetting("outer", "1");
      assertThatThrownBy(() -> store.transaction(inner -> null))
          .isInstanceOf(IllegalStateException.class).hasMessageContaining("do not nest");
      return null;
    });
    assertThat(setting("outer")).contains("1");
  }

  @Test
  void aLocalTxIsDeadOnceItsTransactionEnded() {
    LocalTx escaped = store.transaction(tx -> tx);
    assertThatThrownBy(() -> escaped.setting("x")).isInstanceOf(IllegalStateException.class);
    assertThatThrownBy(() -> escaped.putSetting("x", "y")).isInstanceOf(IllegalStateException.class);
  }

  @Test
  void aClosedStoreRefusesTransactions() {
    store.close();
    store.close(); // idempotent
    assertThatThrownBy(() -> store.transaction(tx -> null)).isInstanceOf(IllegalStateException.class).hasMessageContaining("closed");
  }

  @Test
  void aSecondEntryWithTheSameDeviceSeqFailsAndTheTransactionRollsBack() {
    OutboxEntry first = entry(1, "appointments", id(1), EntryState.PENDING);
    store.transaction(tx -> {
      tx.putEntry(first);
      return null;
    });
    OutboxEntry clash = new OutboxEntry(new org.civicsync.contracts.Mutation(java.util.UUID.randomUUID(), 1, "appointments", id(2),
        org.civicsync.contracts.MutationOp.CREATE, 0, json("{}"), first.mutation().hlc(), first.mutation().clientTime()),
        EntryState.PENDING, Optional.empty(), 0, T0, T0);
    assertThatThrownBy(() -> store.transaction(tx -> {
      tx.putRecord(record("appointments", id(2), "{}"));
      tx.putEntry(clash);
      return null;
    })).isInstanceOf(SqliteStoreException.class).hasMessageContaining("deviceSeq 1");
    store.transaction(tx -> {
      assertThat(tx.record("appointments", id(2))).isEmpty();
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 10)).containsExactly(first);
      return null;
    });
  }

  @Test
  void anotherConnectionToTheFileWaitsForTheWriteLock() throws Exception {
    try (SqliteLocalStore other = openFile(file())) {
      CountDownLatch holding = new CountDownLatch(1);
      AtomicReference<Long> otherDoneAt = new AtomicReference<>();
      CompletableFuture<Void> first = CompletableFuture.runAsync(() -> store.transaction(tx -> {
        tx.putSetting("counter", "1");
        holding.countDown();
        try {
          Thread.sleep(300);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        return null;
      }));
      assertThat(holding.await(10, TimeUnit.SECONDS)).isTrue();
      long firstEndsAfter = System.nanoTime();
      other.transaction(tx -> {
        tx.putSetting("counter", Long.toString(Long.parseLong(tx.setting("counter").orElse("0")) + 1));
        return null;
      });
      otherDoneAt.set(System.nanoTime());
      first.get(10, TimeUnit.SECONDS);
      assertThat(otherDoneAt.get() - firstEndsAfter).isGreaterThan(TimeUnit.MILLISECONDS.toNanos(200));
      assertThat(setting("counter")).contains("2");
    }
  }

  @Test
  void queriesAThousandRecordsAmongThreeThousand() {
    // Thousands of records: a device's working set. Only a sanity bound on time, not a benchmark.
    store.transaction(tx -> {
      for (int i = 0; i < 3000; i++) {
        tx.putRecord(record(i % 3 == 0 ? "visits" : "other", id(i), "{\"n\":" + (i % 17) + ",\"ward\":\"w" + (i % 4) + "\"}"));
      }
      return null;
    });
    long start = System.nanoTime();
    List<LocalRecord> page = store.transaction(tx -> tx.query(new RecordQuery("visits", Map.of("ward", "w0"), Optional.of("n"), true, 10, 20)));
    assertThat(page).hasSize(20);
    assertThat(page).allSatisfy(r -> assertThat(r.collection()).isEqualTo("visits"));
    assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start)).isLessThan(5_000);
  }
}
