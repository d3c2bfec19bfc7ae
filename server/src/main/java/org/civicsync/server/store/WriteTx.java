package org.civicsync.server.store;

import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * One atomic write transaction of one tenant, open only inside {@link ServerStore#write}. The
 * store has already taken the tenant's change-counter lock when the work starts, so no other write
 * transaction of the tenant runs until this one commits: reads here see every earlier commit, and
 * sequence numbers handed out here sort after every committed one and before every later one.
 */
public interface WriteTx {
  /** The tenant's last assigned sequence number when this transaction took the lock. */
  long head();

  /** Log entries for those of {@code mutationIds} the tenant has already received. */
  Map<UUID, LoggedMutation> findLogged(Collection<UUID> mutationIds);

  /** Projection rows for those of {@code keys} that exist (tombstones included). */
  Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys);

  /** Appends entries to the event log; their sequence numbers are above {@link #head()}. */
  void appendLog(List<LoggedMutation> entries);

  /** Inserts or replaces projection rows. */
  void putRecords(Collection<StoredRecord> records);

  /** Streams the tenant's whole event log in sequence order (for projection rebuilds). */
  void forEachLogged(Consumer<LoggedMutation> consumer);

  /** Removes every projection row of the tenant (before a rebuild). */
  void clearRecords();

  /** Sets the tenant's last assigned sequence number; never lower than {@link #head()}. */
  void advanceHead(long newHead);

  /** Records that the device pushed at {@code at}. */
  void markPushed(UUID deviceId, Instant at);
}
