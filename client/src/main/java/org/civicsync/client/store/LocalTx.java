package org.civicsync.client.store;

import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;

/** One transaction of a {@link LocalStore}, open only inside {@link LocalStore#transaction}. */
public interface LocalTx {
  Optional<LocalRecord> record(String collection, UUID recordId);

  /** Records matching the query; records deleted locally or on the server never match. */
  List<LocalRecord> query(RecordQuery query);

  /** Records with {@code dirty} set, in no particular order. */
  List<LocalRecord> dirtyRecords();

  /**
   * Records with {@code dirty} set none of whose outbox entries is in any of {@code states}, in no
   * particular order: edits that have not become a change yet. The client asks this before every
   * push, so a store should answer it without reading every dirty record and its entries (with a
   * large outbox nearly every record is dirty and has an entry); this default does just that.
   */
  default List<LocalRecord> dirtyRecordsWithoutEntriesIn(Collection<EntryState> states) {
    List<LocalRecord> out = new java.util.ArrayList<>();
    for (LocalRecord r : dirtyRecords()) {
      if (entriesOf(r.collection(), r.recordId()).stream().noneMatch(e -> states.contains(e.state()))) {
        out.add(r);
      }
    }
    return out;
  }

  /** Inserts or replaces a record. */
  void putRecord(LocalRecord record);

  /** Forgets a record entirely (it left the device's scope). */
  void removeRecord(String collection, UUID recordId);

  /** Inserts or replaces an outbox entry (keyed by mutation id). */
  void putEntry(OutboxEntry entry);

  Optional<OutboxEntry> entry(UUID mutationId);

  /** Entries in any of {@code states}, by ascending deviceSeq, at most {@code limit}. */
  List<OutboxEntry> entries(Collection<EntryState> states, int limit);

  /** The entries of one record, by ascending deviceSeq. */
  List<OutboxEntry> entriesOf(String collection, UUID recordId);

  /** How many entries are in each of the given states (a map from state to count, zero omitted). */
  java.util.Map<EntryState, Long> countByState();

  void removeEntry(UUID mutationId);

  /** A small setting: the pull cursor, the deviceSeq counter, credentials, cached schemas. */
  Optional<String> setting(String key);

  void putSetting(String key, String value);
}
