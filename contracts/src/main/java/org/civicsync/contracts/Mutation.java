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
 * @param clientTime the device's clock when the change was made, ISO-8601, kept as sent
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
    String clientTime) {}
