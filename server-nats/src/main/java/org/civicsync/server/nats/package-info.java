/**
 * The {@link org.civicsync.server.events.EventPublisher} on NATS JetStream: what the outbox relay
 * uses to hand committed domain events to subscribers outside CivicSync.
 *
 * <p>{@link org.civicsync.server.nats.NatsPublisher} makes sure the stream exists with the
 * configured subjects and limits, and publishes each event with its event id as {@code
 * Nats-Msg-Id}, so that the relay's at-least-once re-sends are stored at most once by JetStream
 * (within the stream's duplicate window). {@link org.civicsync.server.nats.NatsSettings} holds
 * what an operator configures.
 */
package org.civicsync.server.nats;
