package org.civicsync.client;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.stream.Collectors;
import org.civicsync.client.store.RecordQuery;

/**
 * One collection on the device. Writes are checked against the collection's schema (as last
 * downloaded, or the built-in definitions) and fail at once with the code the server would give;
 * when they succeed they are durable locally and queued for the server.
 */
public final class LocalCollection {
  private final CivicSyncClient client;
  private final String name;

  LocalCollection(CivicSyncClient client, String name) {
    this.client = client;
    this.name = name;
  }

  public String name() {
    return name;
  }

  /** Creates a record; returns its new id. @throws ClientException {@code VALIDATION_FAILED} */
  public UUID create(ObjectNode data) {
    return client.create(name, data);
  }

  /** Changes the given top-level fields ({@code null} removes one). */
  public void update(UUID recordId, ObjectNode patch) {
    client.update(name, recordId, patch);
  }

  public void delete(UUID recordId) {
    client.delete(name, recordId);
  }

  /** The record as the user sees it (local changes included). */
  public Optional<ObjectNode> get(UUID recordId) {
    return client.get(name, recordId);
  }

  /** Records whose fields equal the values, ordered by a field (then id), one page. */
  public List<Map.Entry<UUID, ObjectNode>> query(Map<String, String> equals, Optional<String> orderBy, boolean descending, int offset,
      int limit) {
    return client.query(new RecordQuery(name, equals, orderBy, descending, offset, limit)).stream()
        .map(r -> Map.entry(r.recordId(), r.data().deepCopy())).collect(Collectors.toList());
  }

  /** Every record of the collection, by id. */
  public List<Map.Entry<UUID, ObjectNode>> all() {
    return query(Map.of(), Optional.empty(), false, 0, Integer.MAX_VALUE);
  }

  /** Calls {@code listener} after each change of a record of this collection, local or synced. */
  public void observe(Listeners.RecordListener listener) {
    client.observe((c, id, data) -> {
      if (c.equals(name)) {
        listener.changed(c, id, data);
      }
    });
  }
}
