package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/** An item of the supervisor inbox as the API shows it (schema {@code inbox-item.schema.json}). */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record InboxItemView(
    UUID id, String kind, String status, String collection, UUID recordId, UUID mutationId, UUID deviceId,
    Instant createdAt, ObjectNode detail, ObjectNode resolution) {}
