package org.civicsync.client.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.civicsync.client.store.sqlite.Fixtures.T0;
import static org.civicsync.client.store.sqlite.Fixtures.confirmed;
import static org.civicsync.client.store.sqlite.Fixtures.entry;
import static org.civicsync.client.store.sqlite.Fixtures.id;
import static org.civicsync.client.store.sqlite.Fixtures.json;
import static org.civicsync.client.store.sqlite.Fixtures.record;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.RecordQuery;
import org.civicsync.contracts.MutationResult;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@link LocalStore} SPI's behaviour, run against every implementation: the in-memory
 * reference and the SQLite store, plaintext and encrypted. A store passes when it gives the
 * reference's results.
 */
abstract class AbstractLocalStoreTest {
  @TempDir
  Path dir;

  LocalStore store;

  /** A new, empty store keeping its files (if any) in {@code dir}. */
  abstract LocalStore newStore(Path dir);

  @BeforeEach
  void openStore() {
    store = newStore(dir);
  }

  @AfterEach
  void closeStore() {
    store.close();
  }

  void put(LocalRecord... records) {
    store.transaction(tx -> {
      for (LocalRecord r : records) {
        tx.putRecord(r);
      }
      return null;
    });
  }

  List<LocalRecord> query(RecordQuery q) {
    return store.transaction(tx -> tx.query(q));
  }

  List<LocalRecord> dirty() {
    return store.transaction(tx -> tx.dirtyRecords());
  }

  Optional<OutboxEntry> entryOf(UUID mutationId) {
    return store.transaction(tx -> tx.entry(mutationId));
  }

  Map<EntryState, Long> counts() {
    return store.transaction(tx -> tx.countByState());
  }

  Optional<String> setting(String key) {
    return store.transaction(tx -> tx.setting(key));
  }

  static List<UUID> ids(List<LocalRecord> records) {
    return records.stream().map(LocalRecord::recordId).collect(Collectors.toList());
  }

  static RecordQuery where(String collection, Map<String, String> equals) {
    return new RecordQuery(collection, equals, Optional.empty(), false, 0, Integer.MAX_VALUE);
  }

  static RecordQuery ordered(String collection, String field, boolean descending, int offset, int limit) {
    return new RecordQuery(collection, Map.of(), Optional.of(field), descending, offset, limit);
  }

  // ------------------------------------------------------------------ records

  @Test
  void putsAndGetsRecordsExactly() {
    LocalRecord fresh = record("appointments", id(1), "{\"patientName\":\"Nimali Perera\",\"age\":34,\"score\":1.5,\"ok\":true,"
        + "\"tags\":[\"a\",{\"b\":null}],\"big\":12345678901234,\"unicode\":\"\u0dc3\u0dd2\u0d82\u0dc4\u0dbd \ud83d\ude00\"}");
    LocalRecord synced = confirmed("appointments", id(2), 7, "{\"patientName\":\"Kamal\"}");
    LocalRecord deleted = new LocalRecord("appointments", id(3), 9, json("{\"x\":1}"), null, true, T0);
    LocalRecord goneOnServer = new LocalRecord("appointments", id(4), 10, null, null, false, T0);
    LocalRecord sameIdOtherCollection = record("claims", id(1), "{\"amount\":100}");
    put(fresh, synced, deleted, goneOnServer, sameIdOtherCollection);

    store.transaction(tx -> {
      assertThat(tx.record("appointments", id(1))).contains(fresh);
      assertThat(tx.record("appointments", id(2))).contains(synced);
      assertThat(tx.record("appointments", id(3))).contains(deleted);
      assertThat(tx.record("appointments", id(3)).orElseThrow().deleted()).isTrue();
      assertThat(tx.record("appointments", id(4))).contains(goneOnServer);
      assertThat(tx.record("claims", id(1))).contains(sameIdOtherCollection);
      assertThat(tx.record("appointments", id(99))).isEmpty();
      assertThat(tx.record("nothing", id(1))).isEmpty();
      return null;
    });
  }

  @Test
  void replacesAndRemovesRecords() {
    put(record("appointments", id(1), "{\"v\":1}"), record("appointments", id(2), "{\"v\":1}"));
    LocalRecord replaced = new LocalRecord("appointments", id(1), 3, json("{\"v\":2}"), json("{\"v\":3}"), false, T0.plusSeconds(5));
    put(replaced);
    store.transaction(tx -> {
      tx.removeRecord("appointments", id(2));
      tx.removeRecord("appointments", id(42)); // absent: nothing happens
      return null;
    });
    store.transaction(tx -> {
      assertThat(tx.record("appointments", id(1))).contains(replaced);
      assertThat(tx.record("appointments", id(2))).isEmpty();
      return null;
    });
    assertThat(query(RecordQuery.all("appointments"))).containsExactly(replaced);
  }

  @Test
  void dirtyRecordsAreTheOnesWithLocalChanges() {
    LocalRecord a = record("appointments", id(1), "{\"v\":1}");
    LocalRecord b = confirmed("appointments", id(2), 1, "{\"v\":1}");
    LocalRecord c = new LocalRecord("claims", id(3), 2, json("{\"v\":1}"), null, true, T0); // deleted locally
    put(a, b, c);
    assertThat(dirty()).containsExactlyInAnyOrder(a, c);
    put(new LocalRecord("appointments", id(1), 1, a.data(), a.data(), false, T0));
    assertThat(dirty()).containsExactly(c);
  }

  @Test
  void dirtyRecordsWithoutEntriesInThoseStatesAreTheEditsNotYetSent() {
    LocalRecord queued = record("appointments", id(1), "{\"v\":1}");
    LocalRecord waiting = record("appointments", id(2), "{\"v\":2}");
    LocalRecord answered = record("appointments", id(3), "{\"v\":3}");
    LocalRecord clean = confirmed("appointments", id(4), 1, "{\"v\":4}");
    LocalRecord deletedLocally = new LocalRecord("claims", id(5), 2, json("{\"v\":5}"), null, true, T0);
    put(queued, waiting, answered, clean, deletedLocally);
    store.transaction(tx -> {
      tx.putEntry(entry(1, "appointments", id(1), EntryState.PENDING));
      tx.putEntry(entry(2, "appointments", id(2), EntryState.REJECTED));
      tx.putEntry(entry(3, "appointments", id(3), EntryState.SENDING));
      tx.putEntry(entry(4, "appointments", id(3), EntryState.CONFLICT));
      tx.putEntry(entry(5, "appointments", id(4), EntryState.CONFLICT));
      return null;
    });
    Set<EntryState> inFlight = EnumSet.of(EntryState.PENDING, EntryState.SENDING, EntryState.HELD);
    store.transaction(tx -> {
      assertThat(tx.dirtyRecordsWithoutEntriesIn(inFlight)).containsExactlyInAnyOrder(waiting, deletedLocally);
      assertThat(tx.dirtyRecordsWithoutEntriesIn(EnumSet.of(EntryState.CONFLICT))).containsExactlyInAnyOrder(queued, waiting, deletedLocally);
      assertThat(tx.dirtyRecordsWithoutEntriesIn(EnumSet.noneOf(EntryState.class))).containsExactlyInAnyOrder(queued, waiting, answered,
          deletedLocally);
      return null;
    });
  }

  // ------------------------------------------------------------------ queries

  /** Records whose fields have every type a query compares. */
  void putPeople() {
    put(
        record("people", id(1), "{\"name\":\"Nimali\",\"age\":30,\"active\":true,\"score\":1.5,\"district\":\"Badulla\"}"),
        record("people", id(2), "{\"name\":\"Kamal\",\"age\":\"30\",\"active\":false,\"score\":10,\"district\":\"Badulla\"}"),
        record("people", id(3), "{\"name\":\"Sunil\",\"age\":41,\"active\":true,\"score\":2,\"district\":\"Kandy\"}"),
        record("people", id(4), "{\"name\":\"Anoma\",\"age\":null,\"active\":\"true\",\"district\":\"Badulla\"}"),
        record("people", id(5), "{\"name\":\"Ruwan\",\"age\":30.0,\"active\":true,\"score\":-3,\"nested\":{\"a\":1}}"),
        record("people", id(6), null), // deleted locally: never matches
        new LocalRecord("people", id(7), 4, json("{\"name\":\"Old\",\"age\":30}"), null, false, T0), // deleted on the server
        record("others", id(8), "{\"name\":\"Nimali\",\"age\":30,\"active\":true}"));
  }

  @Test
  void queriesByEqualityOfStrings() {
    putPeople();
    assertThat(ids(query(where("people", Map.of("district", "Badulla"))))).containsExactly(id(1), id(2), id(4));
    assertThat(ids(query(where("people", Map.of("name", "Nimali"))))).containsExactly(id(1));
    assertThat(ids(query(where("people", Map.of("name", "nimali"))))).isEmpty();
    assertThat(ids(query(where("people", Map.of("name", "Old"))))).isEmpty();
    assertThat(ids(query(where("people", Map.of("missing", "x"))))).isEmpty();
  }

  @Test
  void queriesByEqualityOfNumbersAsJsonText() {
    putPeople();
    // 30 and "30" both read "30"; 30.0 is the JSON text 30.0; null never matches.
    assertThat(ids(query(where("people", Map.of("age", "30"))))).containsExactly(id(1), id(2));
    assertThat(ids(query(where("people", Map.of("age", "30.0"))))).containsExactly(id(5));
    assertThat(ids(query(where("people", Map.of("score", "1.5"))))).containsExactly(id(1));
    assertThat(ids(query(where("people", Map.of("score", "-3"))))).containsExactly(id(5));
    assertThat(ids(query(where("people", Map.of("age", "null"))))).isEmpty();
    assertThat(ids(query(where("people", Map.of("nested", "{\"a\":1}"))))).containsExactly(id(5));
  }

  @Test
  void queriesByEqualityOfBooleansAndSeveralFields() {
    putPeople();
    assertThat(ids(query(where("people", Map.of("active", "true"))))).containsExactly(id(1), id(3), id(4), id(5));
    assertThat(ids(query(where("people", Map.of("active", "false"))))).containsExactly(id(2));
    assertThat(ids(query(where("people", Map.of("active", "true", "district", "Badulla"))))).containsExactly(id(1), id(4));
    assertThat(ids(query(where("people", Map.of("active", "true", "age", "30"))))).containsExactly(id(1));
  }

  @Test
  void allReturnsLiveRecordsOfTheCollectionByRecordId() {
    putPeople();
    assertThat(ids(query(RecordQuery.all("people")))).containsExactly(id(1), id(2), id(3), id(4), id(5));
    assertThat(ids(query(RecordQuery.all("others")))).containsExactly(id(8));
    assertThat(query(RecordQuery.all("nobody"))).isEmpty();
  }

  @Test
  void ordersByAFieldAscendingWithTiesByRecordId() {
    putPeople();
    // score: absent (4) first, then numbers by value (-3, 1.5, 2, 10).
    assertThat(ids(query(ordered("people", "score", false, 0, 100)))).containsExactly(id(4), id(5), id(1), id(3), id(2));
    // district: absent (5) first, then Badulla's by record id, then Kandy.
    assertThat(ids(query(ordered("people", "district", false, 0, 100)))).containsExactly(id(5), id(1), id(2), id(4), id(3));
    // age: null (4) first, numbers 30 (1), 30.0 (5), 41 (3), then the text "30" (2).
    assertThat(ids(query(ordered("people", "age", false, 0, 100)))).containsExactly(id(4), id(1), id(5), id(3), id(2));
  }

  @Test
  void ordersByAFieldDescendingWithTiesByRecordIdReversed() {
    putPeople();
    assertThat(ids(query(ordered("people", "score", true, 0, 100)))).containsExactly(id(2), id(3), id(1), id(5), id(4));
    assertThat(ids(query(ordered("people", "district", true, 0, 100)))).containsExactly(id(3), id(4), id(2), id(1), id(5));
    RecordQuery byIdDescending = new RecordQuery("people", Map.of(), Optional.empty(), true, 0, 100);
    assertThat(ids(query(byIdDescending))).containsExactly(id(5), id(4), id(3), id(2), id(1));
  }

  @Test
  void pagesWithOffsetAndLimit() {
    List<LocalRecord> many = new ArrayList<>();
    for (int i = 1; i <= 25; i++) {
      many.add(record("visits", id(i), "{\"n\":" + (i % 5) + ",\"ward\":\"" + (i % 2 == 0 ? "even" : "odd") + "\"}"));
    }
    put(many.toArray(new LocalRecord[0]));
    List<UUID> all = ids(query(ordered("visits", "n", false, 0, Integer.MAX_VALUE)));
    assertThat(all).hasSize(25);
    assertThat(ids(query(ordered("visits", "n", false, 0, 10)))).isEqualTo(all.subList(0, 10));
    assertThat(ids(query(ordered("visits", "n", false, 10, 10)))).isEqualTo(all.subList(10, 20));
    assertThat(ids(query(ordered("visits", "n", false, 20, 10)))).isEqualTo(all.subList(20, 25));
    assertThat(query(ordered("visits", "n", false, 25, 10))).isEmpty();
    assertThat(query(ordered("visits", "n", false, 0, 0))).isEmpty();
    RecordQuery oddPage = new RecordQuery("visits", Map.of("ward", "odd"), Optional.of("n"), true, 2, 3);
    assertThat(ids(query(oddPage))).containsExactly(id(23), id(13), id(3));
  }

  @Test
  void queriedRecordsAreWhole() {
    LocalRecord r = new LocalRecord("people", id(1), 5, json("{\"name\":\"A\",\"v\":1}"), json("{\"name\":\"A\",\"v\":2}"), true, T0);
    put(r);
    assertThat(query(where("people", Map.of("v", "2")))).containsExactly(r);
    assertThat(query(where("people", Map.of("v", "1")))).isEmpty();
  }

  // ------------------------------------------------------------------ outbox

  @Test
  void putsReplacesAndRemovesOutboxEntries() {
    OutboxEntry e1 = entry(1, "appointments", id(1), EntryState.PENDING);
    OutboxEntry e2 = entry(2, "appointments", id(2), EntryState.PENDING);
    store.transaction(tx -> {
      tx.putEntry(e1);
      tx.putEntry(e2);
      return null;
    });
    assertThat(entryOf(e1.mutationId())).contains(e1);

    List<MutationResult> results = Fixtures.results(e1.mutationId(), id(1));
    for (MutationResult result : results) {
      OutboxEntry answered = new OutboxEntry(e1.mutation(), EntryState.CONFLICT, Optional.of(result), 3, T0, T0.plusMillis(1));
      store.transaction(tx -> {
        tx.putEntry(answered);
        return null;
      });
      assertThat(entryOf(e1.mutationId())).contains(answered);
    }
    OutboxEntry sending = e2.with(EntryState.SENDING, Optional.empty(), T0.plusSeconds(1));
    store.transaction(tx -> {
      tx.putEntry(sending);
      tx.removeEntry(e1.mutationId());
      tx.removeEntry(UUID.randomUUID()); // absent: nothing happens
      return null;
    });
    store.transaction(tx -> {
      assertThat(tx.entry(e1.mutationId())).isEmpty();
      assertThat(tx.entry(e2.mutationId())).contains(sending);
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 100)).containsExactly(sending);
      return null;
    });
  }

  @Test
  void entriesComeInStatesByDeviceSeqUpToTheLimit() {
    store.transaction(tx -> {
      // Written out of order on purpose.
      tx.putEntry(entry(5, "appointments", id(1), EntryState.PENDING));
      tx.putEntry(entry(2, "appointments", id(2), EntryState.SENDING));
      tx.putEntry(entry(9, "claims", id(3), EntryState.PENDING));
      tx.putEntry(entry(1, "appointments", id(1), EntryState.HELD));
      tx.putEntry(entry(7, "appointments", id(1), EntryState.REJECTED));
      tx.putEntry(entry(3, "claims", id(3), EntryState.CONFLICT));
      tx.putEntry(entry(12, "appointments", id(2), EntryState.PENDING));
      return null;
    });
    store.transaction(tx -> {
      assertThat(seqs(tx.entries(EnumSet.of(EntryState.PENDING), 100))).containsExactly(5L, 9L, 12L);
      assertThat(seqs(tx.entries(EnumSet.of(EntryState.PENDING), 2))).containsExactly(5L, 9L);
      assertThat(seqs(tx.entries(EnumSet.of(EntryState.PENDING, EntryState.SENDING), 100))).containsExactly(2L, 5L, 9L, 12L);
      assertThat(seqs(tx.entries(EntryState.UNSETTLED, 100))).containsExactly(1L, 2L, 3L, 5L, 9L, 12L);
      assertThat(seqs(tx.entries(List.of(EntryState.REJECTED, EntryState.REJECTED), 100))).containsExactly(7L);
      assertThat(tx.entries(EnumSet.of(EntryState.APPLIED), 100)).isEmpty();
      assertThat(tx.entries(EnumSet.noneOf(EntryState.class), 100)).isEmpty();
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 0)).isEmpty();
      assertThat(seqs(tx.entriesOf("appointments", id(1)))).containsExactly(1L, 5L, 7L);
      assertThat(seqs(tx.entriesOf("appointments", id(2)))).containsExactly(2L, 12L);
      assertThat(seqs(tx.entriesOf("claims", id(3)))).containsExactly(3L, 9L);
      assertThat(tx.entriesOf("claims", id(1))).isEmpty();
      return null;
    });
  }

  @Test
  void countsEntriesByStateOmittingZeros() {
    assertThat(counts()).isEmpty();
    store.transaction(tx -> {
      tx.putEntry(entry(1, "a", id(1), EntryState.PENDING));
      tx.putEntry(entry(2, "a", id(1), EntryState.PENDING));
      tx.putEntry(entry(3, "a", id(2), EntryState.SENDING));
      tx.putEntry(entry(4, "a", id(3), EntryState.REJECTED));
      return null;
    });
    assertThat(counts())
        .isEqualTo(Map.of(EntryState.PENDING, 2L, EntryState.SENDING, 1L, EntryState.REJECTED, 1L));
    store.transaction(tx -> {
      tx.putEntry(entry(3, "a", id(2), EntryState.PENDING));
      tx.removeEntry(entry(4, "a", id(3), EntryState.REJECTED).mutationId());
      return null;
    });
    assertThat(counts()).isEqualTo(Map.of(EntryState.PENDING, 3L));
  }

  static List<Long> seqs(List<OutboxEntry> entries) {
    return entries.stream().map(OutboxEntry::deviceSeq).collect(Collectors.toList());
  }

  // ------------------------------------------------------------------ settings

  @Test
  void keepsSettings() {
    store.transaction(tx -> {
      assertThat(tx.setting("pull.cursor")).isEmpty();
      tx.putSetting("pull.cursor", "c-1");
      tx.putSetting("device.seq", "41");
      tx.putSetting("empty", "");
      tx.putSetting("schema/appointments", "{\"type\":\"object\",\"title\":\"\u0dc3\u0dd2\"}");
      assertThat(tx.setting("pull.cursor")).contains("c-1"); // read your own writes
      return null;
    });
    store.transaction(tx -> {
      tx.putSetting("pull.cursor", "c-2");
      return null;
    });
    store.transaction(tx -> {
      assertThat(tx.setting("pull.cursor")).contains("c-2");
      assertThat(tx.setting("device.seq")).contains("41");
      assertThat(tx.setting("empty")).contains("");
      assertThat(tx.setting("schema/appointments")).contains("{\"type\":\"object\",\"title\":\"\u0dc3\u0dd2\"}");
      assertThat(tx.setting("PULL.CURSOR")).isEmpty();
      return null;
    });
  }

  // ------------------------------------------------------------------ transactions

  @Test
  void returnsWhatTheWorkReturns() {
    assertThat(store.<Integer>transaction(tx -> 42)).isEqualTo(42);
    assertThat(store.<Object>transaction(tx -> null)).isNull();
  }

  @Test
  void aTransactionWhoseWorkThrowsLeavesNothingBehind() {
    LocalRecord before = record("appointments", id(1), "{\"v\":1}");
    OutboxEntry kept = entry(1, "appointments", id(1), EntryState.PENDING);
    store.transaction(tx -> {
      tx.putRecord(before);
      tx.putEntry(kept);
      tx.putSetting("device.seq", "1");
      return null;
    });

    IllegalArgumentException boom = new IllegalArgumentException("boom");
    assertThatThrownBy(() -> store.transaction(tx -> {
      tx.putRecord(record("appointments", id(1), "{\"v\":2}"));
      tx.putRecord(record("appointments", id(2), "{\"v\":1}"));
      tx.removeEntry(kept.mutationId());
      tx.putEntry(entry(2, "appointments", id(2), EntryState.PENDING));
      tx.putSetting("device.seq", "2");
      tx.putSetting("new", "x");
      assertThat(tx.record("appointments", id(2))).isPresent();
      throw boom;
    })).isSameAs(boom);

    store.transaction(tx -> {
      assertThat(tx.record("appointments", id(1))).contains(before);
      assertThat(tx.record("appointments", id(2))).isEmpty();
      assertThat(tx.entries(EnumSet.allOf(EntryState.class), 100)).containsExactly(kept);
      assertThat(tx.setting("device.seq")).contains("1");
      assertThat(tx.setting("new")).isEmpty();
      return null;
    });
    assertThat(counts()).isEqualTo(Map.of(EntryState.PENDING, 1L));
  }

  @Test
  void concurrentTransactionsAreSerialised() throws Exception {
    int threads = 8;
    int increments = 40;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    CountDownLatch start = new CountDownLatch(1);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int thread = t;
        done.add(pool.submit(() -> {
          start.await();
          for (int i = 0; i < increments; i++) {
            int n = i;
            store.transaction(tx -> {
              long counter = Long.parseLong(tx.setting("counter").orElse("0"));
              Thread.yield(); // invite another transaction in between the read and the write
              tx.putSetting("counter", Long.toString(counter + 1));
              tx.putRecord(record("log", id(thread * 1000 + n), "{\"counter\":" + (counter + 1) + "}"));
              return null;
            });
          }
          return null;
        }));
      }
      start.countDown();
      for (Future<?> f : done) {
        f.get(60, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(setting("counter")).contains(Integer.toString(threads * increments));
    // Every transaction saw a different counter value: none overlapped.
    List<LocalRecord> log = query(RecordQuery.all("log"));
    assertThat(log).hasSize(threads * increments);
    assertThat(log.stream().map(r -> r.data().get("counter").asLong()).distinct().count()).isEqualTo(threads * increments);
  }
}
