package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/**
 * An item of the supervisor inbox: a change a person has to look at.
 *
 * @param kind {@code conflict} (a parked stale change), {@code rejected}, later also {@code forced}
 * @param status {@code open} or {@code resolved}
 * @param detail everything needed to decide: {@code base}, {@code server} and {@code client}
 *     versions, the fields in conflict or the error, the device
 * @param resolvedAt {@code null} while open
 * @param resolution how it was resolved, by whom and why; {@code null} while open
 */
public record InboxItem(
    UUID id, String kind, String status, String collection, UUID recordId, UUID mutationId, UUID deviceId,
    ObjectNode detail, Instant createdAt, Instant resolvedAt, ObjectNode resolution) {

  /** A new, open item. */
  public static InboxItem open(UUID id, String kind, String collection, UUID recordId, UUID mutationId, UUID deviceId,
      ObjectNode detail, Instant createdAt) {
    return new InboxItem(id, kind, "open", collection, recordId, mutationId, deviceId, detail, createdAt, null, null);
  }
}
