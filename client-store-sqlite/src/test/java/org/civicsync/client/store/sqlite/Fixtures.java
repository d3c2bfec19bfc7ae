package org.civicsync.client.store.sqlite;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.client.crypto.AtRestCipher;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.json.Json;

/** Records, mutations and outbox entries for the store tests. */
final class Fixtures {
  private Fixtures() {}

  /** An instant with nanoseconds, to show timestamps round-trip exactly. */
  static final Instant T0 = Instant.parse("2026-11-22T07:12:44.123456789Z");

  static ObjectNode json(String text) {
    try {
      return (ObjectNode) Json.mapper().readTree(text);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException(text, e);
    }
  }

  /** A UUID whose text sorts by {@code n} (so tests can state record-id order). */
  static UUID id(int n) {
    return UUID.fromString(String.format("00000000-0000-4000-8000-%012d", n));
  }

  static LocalRecord record(String collection, UUID id, String data) {
    return new LocalRecord(collection, id, 0, null, data == null ? null : json(data), true, T0);
  }

  static LocalRecord confirmed(String collection, UUID id, long version, String data) {
    return new LocalRecord(collection, id, version, json(data), json(data), false, T0.plusSeconds(version));
  }

  static Mutation mutation(long seq, String collection, UUID recordId, String data) {
    return new Mutation(new UUID(0x5eed, seq), seq, collection, recordId, MutationOp.CREATE, 0, data == null ? null : json(data),
        String.format("%015d-%05d-tablet1", 1_795_331_564_120L + seq, 0), T0.toString())
        .withSignature("c2lnbmF0dXJl-" + seq);
  }

  static OutboxEntry entry(long seq, String collection, UUID recordId, EntryState state) {
    return new OutboxEntry(mutation(seq, collection, recordId, "{\"n\":" + seq + "}"), state, Optional.empty(), 0, T0, T0);
  }

  /** Results of every shape the server sends, to show they round-trip. */
  static List<MutationResult> results(UUID mutationId, UUID recordId) {
    ServerRecord server = new ServerRecord("appointments", recordId, 3, false, json("{\"patientName\":\"S\",\"n\":2.5}"), T0);
    return List.of(
        MutationResult.applied(mutationId, recordId, 4),
        MutationResult.merged(mutationId, server, List.of("n"), null),
        MutationResult.rejected(mutationId, recordId, new ErrorDetail("VALIDATION_FAILED", "slotStart is required", "slotStart")),
        MutationResult.conflict(mutationId, recordId, new ErrorDetail("CONFLICT", "changed on both sides", null), server,
            UUID.randomUUID(), List.of("n")),
        MutationResult.held(mutationId, recordId, 7),
        MutationResult.applied(mutationId, recordId, 4).asReplay());
  }

  static AtRestCipher randomKey() {
    byte[] k = new byte[32];
    new SecureRandom().nextBytes(k);
    return AtRestCipher.withKey(k);
  }
}
