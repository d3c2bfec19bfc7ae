package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Consumer;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.rules.Claim;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.StoreJson;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.store.WriteTx;

/**
 * A write transaction on one connection whose tenant_heads row is already locked. Every batch
 * method is one statement with array parameters (a push of 1,000 mutations costs the same handful
 * of round trips as a push of one).
 */
final class PostgresWriteTx implements WriteTx {
  private static final String FIND_LOGGED =
      "SELECT mutation_id, " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? AND mutation_id = ANY(?::uuid[])";

  private static final String FIND_RECORDS =
      "SELECT r.collection, r.record_id, r.version, r.deleted, r.data, r.seq, r.updated_at, r.field_hlc"
          + " FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)"
          + " JOIN records r ON r.tenant_id = ? AND r.collection = k.collection AND r.record_id = k.record_id";

  // Uses the (tenant_id, collection, record_id, record_version) index; versions of a record only
  // increase, so there is at most one entry, and the latest wins should there ever be more.
  private static final String FIND_VERSION =
      "SELECT after_state FROM mutation_log WHERE tenant_id = ? AND collection = ? AND record_id = ? AND record_version = ?"
          + " ORDER BY seq DESC LIMIT 1";

  private static final String APPEND_LOG =
      "INSERT INTO mutation_log (tenant_id, mutation_id, seq, device_id, collection, record_id, op, content_hash,"
          + " mutation, result, status, received_at, record_version, after_state)"
          + " SELECT ?, u.* FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::text[], ?::uuid[], ?::text[], ?::text[],"
          + " ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::bigint[], ?::text[]) AS u";

  private static final String PUT_RECORDS =
      "INSERT INTO records (tenant_id, collection, record_id, version, deleted, data, seq, updated_at, field_hlc)"
          + " SELECT ?, u.collection, u.record_id, u.version, u.deleted, u.data::jsonb, u.seq, u.updated_at, u.field_hlc::jsonb"
          + " FROM unnest(?::text[], ?::uuid[], ?::bigint[], ?::boolean[], ?::text[], ?::bigint[], ?::timestamptz[], ?::text[])"
          + " AS u(collection, record_id, version, deleted, data, seq, updated_at, field_hlc)"
          + " ON CONFLICT (tenant_id, collection, record_id) DO UPDATE SET version = excluded.version,"
          + " deleted = excluded.deleted, data = excluded.data, seq = excluded.seq, updated_at = excluded.updated_at,"
          + " field_hlc = excluded.field_hlc";

  private static final String OPEN_INBOX_ITEMS =
      "INSERT INTO inbox_items (tenant_id, id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at)"
          + " SELECT ?, u.id, u.kind, u.status, u.collection, u.record_id, u.mutation_id, u.device_id, u.detail::jsonb, u.created_at"
          + " FROM unnest(?::uuid[], ?::text[], ?::text[], ?::text[], ?::uuid[], ?::uuid[], ?::uuid[], ?::text[], ?::timestamptz[])"
          + " AS u(id, kind, status, collection, record_id, mutation_id, device_id, detail, created_at)";

  // The primary key (tenant_id, rule, claim_key, ...) answers this with one index range scan.
  private static final String CLAIM_HOLDERS =
      "SELECT c.rule, c.claim_key, c.record_id FROM rule_claims c"
          + " JOIN unnest(?::text[], ?::text[]) AS w(rule, claim_key) ON c.rule = w.rule AND c.claim_key = w.claim_key"
          + " WHERE c.tenant_id = ?";

  // Replaces the claims of a set of records in one statement. The records are k (parallel arrays
  // of collection and id; a record with no claims left appears only here), their new claims n.
  // The DELETE drops each record's rows that are not among its new claims, the INSERT adds the new
  // ones it does not hold yet (ON CONFLICT DO NOTHING skips those it keeps). The two touch
  // disjoint rows, so it does not matter that PostgreSQL runs a WITH clause's DELETE and the main
  // INSERT against one snapshot in no defined order; and a record whose claims did not change
  // (most updates) costs no dead tuples or index churn. The DELETE finds the rows through the
  // (tenant_id, collection, record_id) index.
  private static final String PUT_CLAIMS =
      "WITH k AS (SELECT * FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)),"
          + " n AS (SELECT DISTINCT * FROM unnest(?::text[], ?::uuid[], ?::text[], ?::text[]) AS n(collection, record_id, rule, claim_key)),"
          + " released AS (DELETE FROM rule_claims c USING k WHERE c.tenant_id = ? AND c.collection = k.collection"
          + " AND c.record_id = k.record_id AND NOT EXISTS (SELECT 1 FROM n WHERE n.collection = c.collection"
          + " AND n.record_id = c.record_id AND n.rule = c.rule AND n.claim_key = c.claim_key))"
          + " INSERT INTO rule_claims (tenant_id, rule, claim_key, collection, record_id)"
          + " SELECT ?, n.rule, n.claim_key, n.collection, n.record_id FROM n ON CONFLICT DO NOTHING";

  /** Rows per fetch while streaming the log; bounds memory during a rebuild of any size. */
  private static final int LOG_FETCH_SIZE = 1_000;

  private final Connection c;
  private final String tenantId;
  private final long startHead;
  private long head;

  PostgresWriteTx(Connection c, String tenantId, long startHead) {
    this.c = c;
    this.tenantId = tenantId;
    this.startHead = startHead;
    this.head = startHead;
  }

  @Override
  public long head() {
    return startHead;
  }

  @Override
  public Map<UUID, LoggedMutation> findLogged(Collection<UUID> mutationIds) {
    if (mutationIds.isEmpty()) {
      return Map.of();
    }
    Map<UUID, LoggedMutation> out = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(FIND_LOGGED)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds.toArray(UUID[]::new)));
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          out.put(rs.getObject("mutation_id", UUID.class), Sql.loggedMutation(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the event log", e);
    }
    return out;
  }

  @Override
  public Map<RecordKey, StoredRecord> findRecords(Collection<RecordKey> keys) {
    if (keys.isEmpty()) {
      return Map.of();
    }
    String[] collections = new String[keys.size()];
    UUID[] ids = new UUID[keys.size()];
    int i = 0;
    for (RecordKey k : keys) {
      collections[i] = k.collection();
      ids[i++] = k.recordId();
    }
    Map<RecordKey, StoredRecord> out = new HashMap<>();
    try (PreparedStatement ps = c.prepareStatement(FIND_RECORDS)) {
      ps.setArray(1, Sql.array(c, "text", collections));
      ps.setArray(2, Sql.array(c, "uuid", ids));
      ps.setString(3, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          StoredRecord r = Sql.storedRecord(rs);
          out.put(r.key(), r);
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading records", e);
    }
    return out;
  }

  @Override
  public Optional<RecordState> findVersion(RecordKey key, long version) {
    try (PreparedStatement ps = c.prepareStatement(FIND_VERSION)) {
      ps.setString(1, tenantId);
      ps.setString(2, key.collection());
      ps.setObject(3, key.recordId());
      ps.setLong(4, version);
      try (ResultSet rs = ps.executeQuery()) {
        return rs.next() ? Optional.of(StoreJson.state(rs.getString(1))) : Optional.empty();
      }
    } catch (SQLException e) {
      throw Sql.failure("reading version " + version + " of record " + key.recordId(), e);
    }
  }

  @Override
  public void appendLog(List<LoggedMutation> entries) {
    for (LoggedMutation e : entries) {
      if (e.seq() <= startHead) {
        throw new IllegalStateException("log entry " + e.mutation().mutationId() + " has seq " + e.seq()
            + ", not above the head " + startHead + " this transaction started from");
      }
    }
    for (int from = 0; from < entries.size(); from += Sql.CHUNK) {
      appendChunk(entries.subList(from, Math.min(entries.size(), from + Sql.CHUNK)));
    }
  }

  private void appendChunk(List<LoggedMutation> entries) {
    int n = entries.size();
    UUID[] mutationIds = new UUID[n];
    Long[] seqs = new Long[n];
    UUID[] deviceIds = new UUID[n];
    String[] collections = new String[n];
    UUID[] recordIds = new UUID[n];
    String[] ops = new String[n];
    String[] hashes = new String[n];
    String[] mutations = new String[n];
    String[] results = new String[n];
    String[] statuses = new String[n];
    String[] receivedAt = new String[n];
    Long[] recordVersions = new Long[n];
    String[] afterStates = new String[n];
    for (int i = 0; i < n; i++) {
      LoggedMutation e = entries.get(i);
      mutationIds[i] = e.mutation().mutationId();
      seqs[i] = e.seq();
      deviceIds[i] = e.deviceId();
      collections[i] = e.mutation().collection();
      recordIds[i] = e.mutation().recordId();
      ops[i] = e.mutation().op().wire();
      hashes[i] = e.contentHash();
      mutations[i] = StoreJson.write(e.mutation());
      results[i] = StoreJson.write(e.result());
      statuses[i] = e.result().status().wire();
      receivedAt[i] = Sql.timestampText(e.receivedAt());
      if (e.after() != null) {
        recordVersions[i] = e.after().version();
        afterStates[i] = StoreJson.write(Sql.stored(e.after()));
      }
    }
    try (PreparedStatement ps = c.prepareStatement(APPEND_LOG)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", mutationIds));
      ps.setArray(3, Sql.array(c, "int8", seqs));
      ps.setArray(4, Sql.array(c, "uuid", deviceIds));
      ps.setArray(5, Sql.array(c, "text", collections));
      ps.setArray(6, Sql.array(c, "uuid", recordIds));
      ps.setArray(7, Sql.array(c, "text", ops));
      ps.setArray(8, Sql.array(c, "text", hashes));
      ps.setArray(9, Sql.array(c, "text", mutations));
      ps.setArray(10, Sql.array(c, "text", results));
      ps.setArray(11, Sql.array(c, "text", statuses));
      ps.setArray(12, Sql.array(c, "text", receivedAt));
      ps.setArray(13, Sql.array(c, "int8", recordVersions));
      ps.setArray(14, Sql.array(c, "text", afterStates));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("appending to the event log", e);
    }
  }

  @Override
  public void putRecords(Collection<StoredRecord> records) {
    // One INSERT ... ON CONFLICT DO UPDATE may not touch a row twice; a later row for the same key
    // replaces an earlier one, as if they had been put one after another.
    Map<RecordKey, StoredRecord> latest = new LinkedHashMap<>();
    for (StoredRecord r : records) {
      latest.remove(r.key());
      latest.put(r.key(), r);
    }
    List<StoredRecord> rows = new ArrayList<>(latest.values());
    for (int from = 0; from < rows.size(); from += Sql.CHUNK) {
      putChunk(rows.subList(from, Math.min(rows.size(), from + Sql.CHUNK)));
    }
  }

  private void putChunk(List<StoredRecord> rows) {
    int n = rows.size();
    String[] collections = new String[n];
    UUID[] ids = new UUID[n];
    Long[] versions = new Long[n];
    Boolean[] deleted = new Boolean[n];
    String[] data = new String[n];
    Long[] seqs = new Long[n];
    String[] updatedAt = new String[n];
    String[] fieldHlc = new String[n];
    for (int i = 0; i < n; i++) {
      StoredRecord r = rows.get(i);
      collections[i] = r.collection();
      ids[i] = r.recordId();
      versions[i] = r.version();
      deleted[i] = r.deleted();
      data[i] = r.data() == null ? null : StoreJson.write(r.data());
      seqs[i] = r.seq();
      updatedAt[i] = Sql.timestampText(r.updatedAt());
      fieldHlc[i] = StoreJson.write(r.fieldHlc());
    }
    try (PreparedStatement ps = c.prepareStatement(PUT_RECORDS)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "text", collections));
      ps.setArray(3, Sql.array(c, "uuid", ids));
      ps.setArray(4, Sql.array(c, "int8", versions));
      ps.setArray(5, Sql.array(c, "bool", deleted));
      ps.setArray(6, Sql.array(c, "text", data));
      ps.setArray(7, Sql.array(c, "int8", seqs));
      ps.setArray(8, Sql.array(c, "text", updatedAt));
      ps.setArray(9, Sql.array(c, "text", fieldHlc));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("writing records", e);
    }
  }

  @Override
  public void openInboxItems(List<InboxItem> items) {
    for (int from = 0; from < items.size(); from += Sql.CHUNK) {
      openChunk(items.subList(from, Math.min(items.size(), from + Sql.CHUNK)));
    }
  }

  private void openChunk(List<InboxItem> items) {
    int n = items.size();
    UUID[] ids = new UUID[n];
    String[] kinds = new String[n];
    String[] statuses = new String[n];
    String[] collections = new String[n];
    UUID[] recordIds = new UUID[n];
    UUID[] mutationIds = new UUID[n];
    UUID[] deviceIds = new UUID[n];
    String[] details = new String[n];
    String[] createdAt = new String[n];
    for (int i = 0; i < n; i++) {
      InboxItem item = items.get(i);
      ids[i] = item.id();
      kinds[i] = item.kind();
      statuses[i] = item.status();
      collections[i] = item.collection();
      recordIds[i] = item.recordId();
      mutationIds[i] = item.mutationId();
      deviceIds[i] = item.deviceId();
      details[i] = StoreJson.write(item.detail());
      createdAt[i] = Sql.timestampText(item.createdAt());
    }
    try (PreparedStatement ps = c.prepareStatement(OPEN_INBOX_ITEMS)) {
      ps.setString(1, tenantId);
      ps.setArray(2, Sql.array(c, "uuid", ids));
      ps.setArray(3, Sql.array(c, "text", kinds));
      ps.setArray(4, Sql.array(c, "text", statuses));
      ps.setArray(5, Sql.array(c, "text", collections));
      ps.setArray(6, Sql.array(c, "uuid", recordIds));
      ps.setArray(7, Sql.array(c, "uuid", mutationIds));
      ps.setArray(8, Sql.array(c, "uuid", deviceIds));
      ps.setArray(9, Sql.array(c, "text", details));
      ps.setArray(10, Sql.array(c, "text", createdAt));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("opening inbox items", e);
    }
  }

  @Override
  public void forEachLogged(Consumer<LoggedMutation> consumer) {
    // Autocommit is off in a write transaction, so the driver reads through a server-side cursor
    // LOG_FETCH_SIZE rows at a time instead of loading the whole log into memory.
    try (PreparedStatement ps = c.prepareStatement(
        "SELECT " + Sql.LOG_COLUMNS + " FROM mutation_log WHERE tenant_id = ? ORDER BY seq")) {
      ps.setFetchSize(LOG_FETCH_SIZE);
      ps.setString(1, tenantId);
      try (ResultSet rs = ps.executeQuery()) {
        while (rs.next()) {
          consumer.accept(Sql.loggedMutation(rs));
        }
      }
    } catch (SQLException e) {
      throw Sql.failure("reading the event log", e);
    }
  }

  /**
   * {@inheritDoc}
   *
   * <p>No lock beyond the tenant's counter row, which this transaction took first: every
   * transaction that writes claims of the tenant holds that row lock until it commits, so under
   * READ COMMITTED this statement sees every earlier writer's claims, and no other writer can add
   * or release one before this transaction commits. The check ("are there fewer holders than the
   * limit?") and the write of the new claim are therefore atomic as far as any competing push is
   * concerned: two devices racing for the last slot are decided one after the other. (A
   * FOR UPDATE or SERIALIZABLE here would add cost and nothing else.)
   */
  @Override
  public Map<Claim, Set<UUID>> claimHolders(Collection<Claim> claims) {
    Map<Claim, Set<UUID>> out = new HashMap<>();
    List<Claim> all = new ArrayList<>(claims);
    for (Claim cl : all) {
      out.put(cl, new HashSet<>());
    }
    for (int from = 0; from < all.size(); from += Sql.CHUNK) {
      List<Claim> chunk = all.subList(from, Math.min(all.size(), from + Sql.CHUNK));
      try (PreparedStatement ps = c.prepareStatement(CLAIM_HOLDERS)) {
        ps.setArray(1, Sql.array(c, "text", chunk.stream().map(Claim::rule).toArray()));
        ps.setArray(2, Sql.array(c, "text", chunk.stream().map(Claim::key).toArray()));
        ps.setString(3, tenantId);
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            out.get(new Claim(rs.getString(1), rs.getString(2))).add(rs.getObject(3, UUID.class));
          }
        }
      } catch (SQLException e) {
        throw Sql.failure("reading the holders of " + chunk.size() + " rule claims", e);
      }
    }
    return out;
  }

  /** {@inheritDoc} One statement per {@link Sql#CHUNK} records (so one per push), none for none. */
  @Override
  public void putClaims(Map<RecordKey, List<Claim>> claims) {
    if (claims.isEmpty()) {
      return;
    }
    List<Map.Entry<RecordKey, List<Claim>>> entries = new ArrayList<>(claims.entrySet());
    for (int from = 0; from < entries.size(); from += Sql.CHUNK) {
      putClaimsChunk(entries.subList(from, Math.min(entries.size(), from + Sql.CHUNK)));
    }
  }

  private void putClaimsChunk(List<Map.Entry<RecordKey, List<Claim>>> entries) {
    int n = entries.size();
    String[] keyCollections = new String[n];
    UUID[] keyIds = new UUID[n];
    List<String> collections = new ArrayList<>();
    List<UUID> ids = new ArrayList<>();
    List<String> rules = new ArrayList<>();
    List<String> keys = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      RecordKey record = entries.get(i).getKey();
      keyCollections[i] = record.collection();
      keyIds[i] = record.recordId();
      for (Claim claim : entries.get(i).getValue()) {
        collections.add(record.collection());
        ids.add(record.recordId());
        rules.add(claim.rule());
        keys.add(claim.key());
      }
    }
    try (PreparedStatement ps = c.prepareStatement(PUT_CLAIMS)) {
      ps.setArray(1, Sql.array(c, "text", keyCollections));
      ps.setArray(2, Sql.array(c, "uuid", keyIds));
      ps.setArray(3, Sql.array(c, "text", collections.toArray(String[]::new)));
      ps.setArray(4, Sql.array(c, "uuid", ids.toArray(UUID[]::new)));
      ps.setArray(5, Sql.array(c, "text", rules.toArray(String[]::new)));
      ps.setArray(6, Sql.array(c, "text", keys.toArray(String[]::new)));
      ps.setString(7, tenantId);
      ps.setString(8, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("writing rule claims", e);
    }
  }

  @Override
  public void clearRecords() {
    // Claims follow from the records, so they go with them; a rebuild writes both anew.
    for (String sql : new String[] {"DELETE FROM records WHERE tenant_id = ?", "DELETE FROM rule_claims WHERE tenant_id = ?"}) {
      try (PreparedStatement ps = c.prepareStatement(sql)) {
        ps.setString(1, tenantId);
        ps.executeUpdate();
      } catch (SQLException e) {
        throw Sql.failure("clearing records and claims", e);
      }
    }
  }

  @Override
  public void advanceHead(long newHead) {
    if (newHead < head) {
      throw new IllegalArgumentException("head may not move backwards: " + head + " -> " + newHead);
    }
    if (newHead == head) {
      return; // a push of nothing but replays: no row version, no WAL
    }
    try (PreparedStatement ps = c.prepareStatement("UPDATE tenant_heads SET head = ? WHERE tenant_id = ?")) {
      ps.setLong(1, newHead);
      ps.setString(2, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("advancing the change counter", e);
    }
    head = newHead;
  }

  @Override
  public void markPushed(UUID deviceId, Instant at) {
    // Never backwards: of two pushes of one device, the later commit may carry the earlier time.
    try (PreparedStatement ps = c.prepareStatement("UPDATE devices SET last_push_at = ?"
        + " WHERE device_id = ? AND tenant_id = ? AND (last_push_at IS NULL OR last_push_at < ?)")) {
      ps.setObject(1, Sql.timestamp(at));
      ps.setObject(2, deviceId);
      ps.setString(3, tenantId);
      ps.setObject(4, Sql.timestamp(at));
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("recording the push time", e);
    }
  }
}
