/**
 * Domain events through a transactional outbox: every change the server commits to a record is
 * written, in the same transaction, as an event row; {@link org.civicsync.server.events.EventRelay}
 * publishes the rows to a broker through an {@link org.civicsync.server.events.EventPublisher}
 * (NATS JetStream in {@code server-nats}) and marks them published, so nothing is published that
 * did not commit and nothing committed is skipped.
 */
package org.civicsync.server.events;
