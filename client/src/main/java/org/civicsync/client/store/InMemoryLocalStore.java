package org.civicsync.client.store;

import java.util.Collection;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Function;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;

/**
 * A {@link LocalStore} in memory: the reference for the SPI's semantics and a fake for tests. A
 * transaction works on copies and swaps them in when its work returns.
 */
public final class InMemoryLocalStore implements LocalStore {
  private final Object lock = new Object();
  private final ThreadLocal<Boolean> inside = ThreadLocal.withInitial(() -> false);
  private State state = new State();

  private static final class State {
    final Map<String, LocalRecord> records = new HashMap<>();
    final Map<UUID, OutboxEntry> entries = new HashMap<>();
    final Map<String, String> settings = new HashMap<>();

    State copy() {
      State s = new State();
      s.records.putAll(records);
      s.entries.putAll(entries);
      s.settings.putAll(settings);
      return s;
    }
  }

  private static String key(String collection, UUID id) {
    return collection + "/" + id;
  }

  @Override
  public <T> T transaction(Function<LocalTx, T> work) {
    if (inside.get()) {
      // An inner transaction would work on a copy its outer one then overwrites: refuse it, as
      // the SQLite store does.
      throw new IllegalStateException("transactions do not nest");
    }
    synchronized (lock) {
      inside.set(true);
      try {
        State draft = state.copy();
        T out = work.apply(new Tx(draft));
        state = draft;
        return out;
      } finally {
        inside.set(false);
      }
    }
  }

  @Override
  public void close() {}

  private static final class Tx implements LocalTx {
    private final State s;

    Tx(State s) {
      this.s = s;
    }

    @Override
    public Optional<LocalRecord> record(String collection, UUID recordId) {
      return Optional.ofNullable(s.records.get(key(collection, recordId)));
    }

    @Override
    public List<LocalRecord> query(RecordQuery q) {
      return q.select(s.records.values().stream());
    }

    @Override
    public List<LocalRecord> dirtyRecords() {
      return s.records.values().stream().filter(LocalRecord::dirty).collect(java.util.stream.Collectors.toList());
    }

    @Override
    public void putRecord(LocalRecord record) {
      s.records.put(key(record.collection(), record.recordId()), record);
    }

    @Override
    public void removeRecord(String collection, UUID recordId) {
      s.records.remove(key(collection, recordId));
    }

    @Override
    public void putEntry(OutboxEntry entry) {
      s.entries.put(entry.mutationId(), entry);
    }

    @Override
    public Optional<OutboxEntry> entry(UUID mutationId) {
      return Optional.ofNullable(s.entries.get(mutationId));
    }

    @Override
    public List<OutboxEntry> entries(Collection<EntryState> states, int limit) {
      return s.entries.values().stream().filter(e -> states.contains(e.state()))
          .sorted(Comparator.comparingLong(OutboxEntry::deviceSeq)).limit(limit).collect(java.util.stream.Collectors.toList());
    }

    @Override
    public List<OutboxEntry> entriesOf(String collection, UUID recordId) {
      return s.entries.values().stream()
          .filter(e -> e.mutation().collection().equals(collection) && e.mutation().recordId().equals(recordId))
          .sorted(Comparator.comparingLong(OutboxEntry::deviceSeq)).collect(java.util.stream.Collectors.toList());
    }

    @Override
    public Map<EntryState, Long> countByState() {
      Map<EntryState, Long> out = new EnumMap<>(EntryState.class);
      s.entries.values().forEach(e -> out.merge(e.state(), 1L, Long::sum));
      return out;
    }

    @Override
    public void removeEntry(UUID mutationId) {
      s.entries.remove(mutationId);
    }

    @Override
    public Optional<String> setting(String key) {
      return Optional.ofNullable(s.settings.get(key));
    }

    @Override
    public void putSetting(String key, String value) {
      s.settings.put(key, value);
    }
  }

}
