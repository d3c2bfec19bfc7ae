package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;

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

  /**
   * The record's state at an earlier version: the after-state of the log entry that produced it,
   * if that entry exists.
   */
  Optional<RecordState> findVersion(RecordKey key, long version);

  /**
   * Live records of a collection whose scalar top-level fields equal the values (compared as
   * {@link ServerStore#listRecords} does), at most {@code limit}, as this transaction sees them.
   */
  List<StoredRecord> findByFields(String collection, Map<String, String> equals, int limit);

  /**
   * For each of {@code lookups}, in their order, the record {@link #findByFields} with a limit of
   * 1 would find: the first live record of {@code collection} by record id whose fields equal the
   * lookup's values. For many lookups in one go (a push's capacity rules read a limit per clinic):
   * a store may answer them in one statement; the default asks one at a time.
   */
  default List<Optional<StoredRecord>> firstByFields(String collection, List<Map<String, String>> lookups) {
    List<Optional<StoredRecord>> out = new java.util.ArrayList<>(lookups.size());
    for (Map<String, String> l : lookups) {
      out.add(findByFields(collection, l, 1).stream().findFirst());
    }
    return out;
  }

  /** Appends entries to the event log; their sequence numbers are above {@link #head()}. */
  void appendLog(List<LoggedMutation> entries);

  /** Opens supervisor inbox items (ids are new). */
  void openInboxItems(List<InboxItem> items);

  /** The tenant's inbox item with this id, if any. */
  Optional<InboxItem> findInboxItem(UUID id);

  /** Marks an open item resolved, recording how. */
  void resolveInboxItem(UUID id, ObjectNode resolution, Instant at);

  /** Appends final results that changed after their first answer; seqs are above {@link #head()}. */
  void appendOutcomes(List<OutcomeRow> outcomes);

  /** For those of {@code mutationIds} with a later outcome, the latest one. */
  Map<UUID, MutationResult> latestOutcomes(Collection<UUID> mutationIds);

  /** Inserts or replaces projection rows. */
  void putRecords(Collection<StoredRecord> records);

  /** Streams the tenant's whole event log in sequence order (for projection rebuilds). */
  void forEachLogged(Consumer<LoggedMutation> consumer);

  /**
   * For each of {@code claims}, the ids of the records holding it as committed before this
   * transaction (an empty set for a claim nobody holds). One round trip for any number of claims.
   */
  Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims);

  /** Replaces the claims held by each of these records (an empty list releases them all). */
  void putClaims(Map<RecordKey, List<Claim>> claims);

  /** Removes every projection row and every claim of the tenant (before a rebuild). */
  void clearRecords();

  /** Sets the tenant's last assigned sequence number; never lower than {@link #head()}. */
  void advanceHead(long newHead);

  /**
   * The device's progress (the highest deviceSeq up to which all its mutations were processed:
   * applied, merged, rejected, parked or skipped by a forced hold; 0 before the first) and its
   * held mutations by ascending deviceSeq.
   */
  DeviceQueue deviceQueue(UUID deviceId);

  /** Sets the device's progress; never lower than before. */
  void setDeviceProgress(UUID deviceId, long deviceSeq);

  /** Held mutations of the tenant among {@code mutationIds} (for idempotent replies). */
  Map<UUID, HeldMutation> findHeld(Collection<UUID> mutationIds);

  /** Keeps mutations until their gap fills. */
  void hold(List<HeldMutation> held);

  /** Forgets held mutations once they are processed. */
  void release(Collection<UUID> mutationIds);

  /** Records that the device pushed at {@code at}. */
  void markPushed(UUID deviceId, Instant at);

  /** Stores a new enrollment code. */
  void insertEnrollmentCode(EnrollmentCodeRow code);

  /**
   * Uses up one use of a code of this tenant that exists, has not expired at {@code now} and has
   * uses left; returns the code as it was before, or empty (and changes nothing) otherwise.
   */
  Optional<EnrollmentCodeRow> redeemEnrollmentCode(String codeHash, Instant now);

  /** Stores a new device or API client of this tenant. */
  void insertDevice(DeviceRow device);

  /** Replaces the device's token (the old one stops working) and its expiry. */
  void renewToken(UUID deviceId, String tokenHash, Instant expiresAt);

  /** Marks the device revoked at {@code at} unless it already is; false if it is not this tenant's. */
  boolean revokeDevice(UUID deviceId, Instant at);

  /** Inserts or replaces a user of this tenant. */
  void putUser(UserRow user);

  /** Inserts or replaces an org unit of this tenant. */
  void putOrgUnit(OrgUnitRow unit);

  /** Records that records changed scope key (written by the server's write path with {@link #putRecords}). */
  void recordMoves(List<ScopeMove> moves);

  /** The tenant's audit chain head as this transaction sees it. */
  AuditHead auditHead();

  /**
   * Appends the next audit entry ({@code entry.seq() == auditHead().seq() + 1}, {@code
   * entry.prevHash()} its hash) and makes it the head.
   */
  void appendAudit(AuditEntry entry);

  /**
   * Asks the store to deliver {@code notice} to its {@link ServerStore#onCommit} subscribers, on
   * every instance sharing the database, once this transaction commits; never if it rolls back.
   * At most one notice per transaction (a later call replaces an earlier one).
   */
  void announce(CommitNotice notice);

  /** Adds rows to the outbox (domain events of this transaction's changes), published after commit. */
  void appendEvents(List<OutboxEvent> events);

  // ---------------------------------------------------------------- compaction

  /**
   * Moves the tombstones with seq in ({@code afterSeq}, {@code throughSeq}] out of the projection
   * into the tenant's graveyard and returns them. A buried record no longer appears in pulls or
   * {@link ServerStore#findRecord} scans, but {@link #findRecords} and {@link ServerStore#findRecord}
   * still answer it as the tombstone it was (from the graveyard), so its id is never created again.
   */
  List<StoredRecord> buryTombstones(long afterSeq, long throughSeq);

  /** Deletes the scope moves with seq in ({@code afterSeq}, {@code throughSeq}]; returns the highest seq deleted, 0 for none. */
  long dropScopeMoves(long afterSeq, long throughSeq);

  /**
   * Log entries with seq in ({@code afterSeq}, {@code throughSeq}], in seq order, whose detail
   * compaction may drop: not compacted yet, carrying a {@link LoggedMutation#detailDigest()}, and
   * not the entry that produced its record's current projection row (which merges and rebuilds
   * still need).
   */
  List<LoggedMutation> supersededLog(long afterSeq, long throughSeq);

  /**
   * Rewrites log entries, found by seq, as compacted ({@link LoggedMutation#compact}): their
   * mutation without detail, no after-state, the compaction time. Everything else stays.
   */
  void compactLog(List<LoggedMutation> compacted);

  /** The tenant's compaction watermark: every tombstone or scope move with a seq up to it may be gone. 0 before any compaction. */
  long watermark();

  /** Raises the watermark to {@code seq} (a lower value changes nothing). */
  void raiseWatermark(long seq);
}
