package org.civicsync.server.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/**
 * An item of the supervisor inbox: a change a person has to look at.
 *
 * @param kind {@code conflict} (a parked stale change), later also {@code rejected} and {@code forced}
 * @param status {@code open} or {@code resolved}
 * @param detail everything needed to decide: {@code base}, {@code server} and {@code client}
 *     versions, the fields in conflict, the device
 */
public record InboxItem(
    UUID id, String kind, String status, String collection, UUID recordId, UUID mutationId, UUID deviceId,
    ObjectNode detail, Instant createdAt) {}
