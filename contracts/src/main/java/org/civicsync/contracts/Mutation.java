package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.UUID;

/**
 * One change made on a device (schema {@code mutation.schema.json}).
 *
 * @param mutationId made by the client once, identical on every retry; with the tenant it is the
 *     idempotency key
 * @param deviceSeq increases per device
 * @param baseVersion the record version the client last saw; 0 for create
 * @param data create: the full record; update: the changed top-level fields ({@code null} value
 *     removes a field); {@code null} (absent) for delete
 * @param hlc the change's hybrid logical clock, {@code <millis:15>-<counter:5>-<deviceId>}; string
 *     order is clock order (see {@code org.civicsync.core.clock.Hlc})
 * @param clientTime the device's clock when the change was made, ISO-8601, kept as sent; the
 *     server records it and never orders anything by it
 * @param signature base64url (no padding) of the device's Ed25519 signature over {@code
 *     "civicsync-mutation-v1\n" + tenantId + "\n" + deviceId + "\n" + JCS(mutation without
 *     signature)}; required in pushes, {@code null} on mutations the server makes itself (records
 *     API, supervisor resolutions)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Mutation(
    UUID mutationId,
    long deviceSeq,
    String collection,
    UUID recordId,
    MutationOp op,
    long baseVersion,
    ObjectNode data,
    String hlc,
    String clientTime,
    String signature) {

  /** An unsigned mutation (to be signed with {@link #withSignature}, or made by the server). */
  public Mutation(UUID mutationId, long deviceSeq, String collection, UUID recordId, MutationOp op, long baseVersion, ObjectNode data,
      String hlc, String clientTime) {
    this(mutationId, deviceSeq, collection, recordId, op, baseVersion, data, hlc, clientTime, null);
  }

  /** The same mutation carrying {@code newSignature}. */
  public Mutation withSignature(String newSignature) {
    return new Mutation(mutationId, deviceSeq, collection, recordId, op, baseVersion, data, hlc, clientTime, newSignature);
  }
}
