package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/**
 * One change the server committed to a record, as published to NATS JetStream
 * ({@code domain-event.schema.json}; docs/events.md). Optional members are null when absent.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record DomainEvent(
    UUID eventId,
    String tenantId,
    String collection,
    UUID recordId,
    String op,
    long version,
    long seq,
    Instant committedAt,
    ObjectNode data,
    UUID mutationId,
    UUID deviceId,
    String status,
    ObjectNode note) {}
