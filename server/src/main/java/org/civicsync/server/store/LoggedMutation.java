package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;

/**
 * One entry of the append-only event log: a mutation as first received, its content digest, the
 * device that sent it, and the result it got (returned verbatim, marked replayed, on every retry).
 *
 * @param seq the entry's position in the tenant's log; applied entries share it with the record
 *     row they produced
 */
public record LoggedMutation(
    long seq, Mutation mutation, String contentHash, UUID deviceId, MutationResult result, Instant receivedAt) {}
