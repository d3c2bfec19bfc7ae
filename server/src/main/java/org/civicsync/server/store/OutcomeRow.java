package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;
import org.civicsync.contracts.MutationResult;

/**
 * A mutation's final result that changed after its first answer (a parked change resolved, a held
 * change applied): what the device learns from {@code GET /v1/sync/outcomes}, and what a replay of
 * the mutation returns from then on.
 *
 * @param seq position in the tenant's order of changes (from the same counter as the change feed)
 * @param deviceId the device that sent the mutation
 */
public record OutcomeRow(long seq, UUID deviceId, MutationResult result, Instant at) {}
