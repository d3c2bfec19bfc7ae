package org.civicsync.server.store.postgres;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Consumer;
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
      "SELECT r.collection, r.record_id, r.version, r.deleted, r.data, r.seq, r.updated_at"
          + " FROM unnest(?::text[], ?::uuid[]) AS k(collection, record_id)"
          + " JOIN records r ON r.tenant_id = ? AND r.collection = k.collection AND r.record_id = k.record_id";

  private static final String APPEND_LOG =
      "INSERT INTO mutation_log (tenant_id, mutation_id, seq, device_id, collection, record_id, op, content_hash,"
          + " mutation, result, status, received_at)"
          + " SELECT ?, u.* FROM unnest(?::uuid[], ?::bigint[], ?::uuid[], ?::text[], ?::uuid[], ?::text[], ?::text[],"
          + " ?::text[], ?::text[], ?::text[], ?::timestamptz[]) AS u";

  private static final String PUT_RECORDS =
      "INSERT INTO records (tenant_id, collection, record_id, version, deleted, data, seq, updated_at)"
          + " SELECT ?, u.collection, u.record_id, u.version, u.deleted, u.data::jsonb, u.seq, u.updated_at"
          + " FROM unnest(?::text[], ?::uuid[], ?::bigint[], ?::boolean[], ?::text[], ?::bigint[], ?::timestamptz[])"
          + " AS u(collection, record_id, version, deleted, data, seq, updated_at)"
          + " ON CONFLICT (tenant_id, collection, record_id) DO UPDATE SET version = excluded.version,"
          + " deleted = excluded.deleted, data = excluded.data, seq = excluded.seq, updated_at = excluded.updated_at";

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
    for (int i = 0; i < n; i++) {
      StoredRecord r = rows.get(i);
      collections[i] = r.collection();
      ids[i] = r.recordId();
      versions[i] = r.version();
      deleted[i] = r.deleted();
      data[i] = r.data() == null ? null : StoreJson.write(r.data());
      seqs[i] = r.seq();
      updatedAt[i] = Sql.timestampText(r.updatedAt());
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
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("writing records", e);
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

  @Override
  public void clearRecords() {
    try (PreparedStatement ps = c.prepareStatement("DELETE FROM records WHERE tenant_id = ?")) {
      ps.setString(1, tenantId);
      ps.executeUpdate();
    } catch (SQLException e) {
      throw Sql.failure("clearing records", e);
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
