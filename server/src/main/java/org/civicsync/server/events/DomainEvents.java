package org.civicsync.server.events;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.civicsync.contracts.DomainEvent;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.RecordState;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutboxEvent;

/** Turns the changes a write transaction logged into outbox rows. */
public final class DomainEvents {
  private DomainEvents() {}

  /**
   * One event per logged change that wrote a new version of a record (applied or merged with a
   * write; refusals, parked conflicts and merges that wrote nothing are not changes).
   */
  public static List<OutboxEvent> of(String tenantId, List<LoggedMutation> logged, Instant committedAt) {
    List<OutboxEvent> out = new ArrayList<>();
    for (LoggedMutation e : logged) {
      RecordState after = e.after();
      if (after == null) {
        continue;
      }
      String op = after.deleted() ? "delete" : after.version() == 1 ? "create" : "update";
      UUID id = eventId(tenantId, e.seq());
      DomainEvent event = new DomainEvent(id, tenantId, e.mutation().collection(), e.mutation().recordId(), op, after.version(), e.seq(),
          committedAt, after.deleted() ? null : after.data(), e.mutation().mutationId(), e.deviceId(), e.result().status().wire(), e.note());
      String payload;
      try {
        payload = Json.mapper().writeValueAsString(event);
      } catch (com.fasterxml.jackson.core.JsonProcessingException ex) {
        throw new IllegalStateException("cannot write a domain event", ex);
      }
      out.add(new OutboxEvent(tenantId, e.seq(), id, subject(tenantId, e.mutation().collection(), op), payload, committedAt, 0));
    }
    return out;
  }

  /** Stable per change: a re-published event keeps its id, so the broker can drop the copy. */
  public static UUID eventId(String tenantId, long seq) {
    return UUID.nameUUIDFromBytes(("civicsync-event\n" + tenantId + "\n" + seq).getBytes(StandardCharsets.UTF_8));
  }

  /** {@code civicsync.<tenant>.<collection>.<op>}, each part made a safe subject token. */
  public static String subject(String tenantId, String collection, String op) {
    return "civicsync." + token(tenantId) + "." + token(collection) + "." + token(op);
  }

  /** A NATS subject token: characters other than letters, digits, {@code _} and {@code -} become {@code _}. */
  static String token(String s) {
    StringBuilder b = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      b.append((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ? c : '_');
    }
    return b.length() == 0 ? "_" : b.toString();
  }
}
