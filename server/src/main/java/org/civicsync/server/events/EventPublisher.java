package org.civicsync.server.events;

import java.util.List;
import java.util.UUID;

/**
 * Where the relay sends domain events: a broker that stores them durably and drops a message
 * whose id it has already stored (NATS JetStream does both, by {@code Nats-Msg-Id} within the
 * stream's duplicate window). Clients never publish; only the relay does.
 */
public interface EventPublisher extends AutoCloseable {
  /** One event to publish: its subject, its id (the broker's deduplication id) and its JSON. */
  record Outgoing(String subject, UUID eventId, byte[] payload) {}

  /**
   * Publishes {@code events} in order and returns once the broker has acknowledged every one
   * (stored it, or recognised it as a duplicate of one it stored). Throws when any was not
   * acknowledged; the relay then sends them all again later, which the deduplication makes safe.
   */
  void publish(List<Outgoing> events) throws PublishException;

  /** Releases the connection. */
  @Override
  void close();

  /** The broker did not take the events (unreachable, timed out, refused). */
  final class PublishException extends Exception {
    public PublishException(String message, Throwable cause) {
      super(message, cause);
    }
  }
}
