package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;

/**
 * A row of the server's transactional outbox: one domain event, written in the transaction that
 * committed its change and published later by the relay.
 *
 * @param seq the change's position in the tenant's event log (the row's key with the tenant)
 * @param subject where the relay publishes it, {@code civicsync.<tenant>.<collection>.<op>}
 * @param payload the event's JSON ({@code domain-event.schema.json})
 * @param attempts how many publish attempts failed so far
 */
public record OutboxEvent(String tenantId, long seq, UUID eventId, String subject, String payload, Instant createdAt, int attempts) {}
