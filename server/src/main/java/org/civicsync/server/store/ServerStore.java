package org.civicsync.server.store;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Function;

/**
 * Durable storage of tenants, devices, the event log and the projection.
 *
 * <p>The one rule every implementation must keep is in {@link #write}: write transactions of a
 * tenant are serialised by a per-tenant change counter taken first and released at commit, so the
 * projection's sequence numbers are handed out in commit order. {@link #pull} then never returns
 * a cursor that a later commit could sort before — the change feed has no gaps.
 *
 * <p>Implementations are thread-safe. Methods throw {@link StoreUnavailableException} when the
 * database cannot be reached; a write transaction is never half-applied (if the connection
 * breaks during commit the outcome is unknown, and an idempotent retry settles it).
 */
public interface ServerStore extends AutoCloseable {

  /** Creates a tenant (and its change counter at 0); {@code false} if the id is taken. */
  boolean createTenant(TenantRow tenant);

  Optional<TenantRow> findTenant(String tenantId);

  /** Every tenant id, sorted. */
  List<String> tenantIds();

  /** The code with this hash, whatever its state (to learn its tenant before redeeming it in a write). */
  Optional<EnrollmentCodeRow> findEnrollmentCode(String codeHash);

  /** The device or API client with this token hash, revoked or not. */
  Optional<DeviceRow> findDeviceByTokenHash(String tokenHash);

  /** The device or API client with this id, in any tenant, revoked or not. */
  Optional<DeviceRow> findDevice(UUID deviceId);

  /** Every device and API client of the tenant, by enrollment time. */
  List<DeviceRow> devices(String tenantId);

  Optional<UserRow> findUser(String tenantId, String userId);

  /** Every user of the tenant, sorted by user id. */
  List<UserRow> users(String tenantId);

  /** Every org unit of the tenant, sorted by id. */
  List<OrgUnitRow> orgUnits(String tenantId);

  /** Stores a challenge (challenges are random; a duplicate never happens). */
  void insertChallenge(ChallengeRow challenge);

  /**
   * Atomically removes the device's challenge with this text and returns it if it had not expired
   * at {@code now}; removes the device's expired challenges too. A challenge is returned at most
   * once, however many callers race for it.
   */
  Optional<ChallengeRow> takeChallenge(UUID deviceId, String challenge, Instant now);

  /**
   * Remembers a set of scope keys under a content-derived id (what a device could see when its
   * cursor was issued); storing the same id again changes nothing.
   */
  void putScopeSnapshot(String tenantId, String snapshotId, Set<String> keys);

  Optional<Set<String>> scopeSnapshot(String tenantId, String snapshotId);

  /** Records that the device pulled at {@code at}. */
  void markPulled(String tenantId, UUID deviceId, Instant at);

  /** A server-wide setting (e.g. the admin token's hash). */
  Optional<String> setting(String key);

  void putSetting(String key, String value);

  /**
   * Runs {@code work} in one transaction of {@code tenantId} holding the tenant's change-counter
   * lock, and commits it when {@code work} returns; rolls everything back when it throws.
   *
   * @throws IllegalArgumentException when the tenant does not exist
   */
  <T> T write(String tenantId, Function<WriteTx, T> work);

  /** The tenant's last assigned sequence number (0 for a new tenant). */
  long head(String tenantId);

  /**
   * Projection rows and scope moves of the tenant matching {@code query}, read from one consistent
   * snapshot together with the head (see {@link PullQuery} and {@link PullPage}).
   */
  PullPage pull(String tenantId, PullQuery query);

  /**
   * Runs {@code work} on one consistent read-only snapshot of the tenant (no lock that blocks
   * writers).
   *
   * @throws IllegalArgumentException when the tenant does not exist
   */
  <T> T read(String tenantId, java.util.function.Function<ReadTx, T> work);

  /** The event-log entries of one record, ascending by seq, at most {@code limit}. */
  List<LoggedMutation> recordLog(String tenantId, RecordKey key, int limit);

  /**
   * Inbox items of the tenant, newest first, filtered by status, kind and collection where given.
   */
  List<InboxItem> inbox(String tenantId, Optional<String> status, Optional<String> kind, Optional<String> collection, int limit);

  /** Outcomes of one device's mutations with {@code seq > afterSeq}, ascending, at most {@code limit}. */
  List<OutcomeRow> outcomes(String tenantId, UUID deviceId, long afterSeq, int limit);

  /** Devices, across tenants, holding a mutation received before {@code cutoff}. */
  List<DeviceKey> devicesWithHoldsBefore(Instant cutoff);

  /** One record (tombstones included), read outside any write transaction. */
  Optional<StoredRecord> findRecord(String tenantId, RecordKey key);

  /**
   * Live records (no tombstones) of one collection whose top-level fields equal the given values,
   * ordered by record id, after {@code after} when given, at most {@code limit}. Filters are for
   * scalar fields: a string compares as itself, a number or boolean as its JSON text ({@code 12},
   * {@code true}); a JSON null or a missing field never matches; objects and arrays are not
   * comparable portably and must not be filtered on.
   */
  List<StoredRecord> listRecords(String tenantId, String collection, Map<String, String> equals, Optional<UUID> after, int limit);

  /**
   * Counts for the statistics API: event-log entries of the tenant received at or after {@code
   * since} (by device, status, error code, and whether they are inbox resolutions), mutations held
   * now, and open inbox items. Read at one consistent moment is not required: these are figures
   * for people, not inputs to a decision.
   */
  TenantCounts counts(String tenantId, Instant since);

  /**
   * Calls {@code listener} with the {@link CommitNotice} of every committed write transaction
   * that announced one, from this and (for a shared database) every other server instance,
   * usually within a second. Delivery is at most once per notice and may be lost when the
   * database connection is; after such a loss the store delivers an {@code everything} notice for
   * each tenant. The listener must return quickly (hand the notice to another thread). Closing
   * the returned handle stops the calls.
   */
  AutoCloseable onCommit(java.util.function.Consumer<CommitNotice> listener);

  /**
   * Outbox rows not yet published, every tenant's, at most {@code limit}: per tenant in {@code seq}
   * order (never by time, which instances' clocks may disagree on).
   */
  List<OutboxEvent> unpublishedEvents(int limit);

  /** Marks outbox rows published (by tenant and seq); rows already marked stay as they are. */
  void markPublished(java.util.Collection<OutboxEvent> events, Instant at);

  /** Counts a failed publish attempt on each row and keeps {@code error} as its last error. */
  void markPublishFailed(java.util.Collection<OutboxEvent> events, String error);

  /** How many outbox rows wait to be published, and since when the oldest has waited. */
  EventBacklog eventBacklog();

  /**
   * The tenant's compaction watermark (see {@link WriteTx#watermark}): a pull whose cursor is
   * below it would miss deletions and must start again. 0 for an unknown tenant.
   */
  long watermark(String tenantId);

  /**
   * The tenant's {@linkplain #head head} and {@linkplain #watermark watermark} together, read at
   * one moment: what a pull checks its cursor against before each page. Stores that keep both in
   * one row should read them in one statement; this default asks twice.
   */
  default FeedBounds feedBounds(String tenantId) {
    return new FeedBounds(head(tenantId), watermark(tenantId));
  }

  /** Deletes up to {@code limit} outbox rows published before {@code cutoff}; returns how many went. */
  int prunePublishedEvents(Instant cutoff, int limit);

  /** Adds bytes to devices' daily traffic (rows are created as needed; figures only grow). */
  void addTraffic(java.util.Collection<DeviceTraffic> traffic);

  /** The store's connection pool now, for the server's metrics; empty for a store without one. */
  Optional<PoolStats> poolStats();

  /** What {@link #poolStats} reports. */
  record PoolStats(int active, int idle, int total, int max, int waiting) {}

  /** Mutations held now and open inbox items, over every tenant (for the server's metrics). */
  Waiting waiting();

  /** What {@link #waiting} reports. */
  record Waiting(long heldMutations, long openInboxItems) {}

  /** What {@link #eventBacklog} reports. */
  record EventBacklog(long pending, Optional<Instant> oldest) {}

  /**
   * Tries to become the one instance (of those sharing the database) that does {@code role}, such
   * as relaying the outbox. Present while it is: close the handle to step down. An instance that
   * loses its database connection loses the role with it (the handle then reports
   * {@code false} from {@link Leadership#held}).
   */
  Optional<Leadership> tryLead(String role);

  /** A role held by this instance; see {@link #tryLead}. */
  interface Leadership extends AutoCloseable {
    /** Whether the role is still held (false after the database connection that held it broke). */
    boolean held();

    @Override
    void close();
  }

  /** Throws {@link StoreUnavailableException} unless the database answers now. */
  void ping();

  @Override
  void close();
}
