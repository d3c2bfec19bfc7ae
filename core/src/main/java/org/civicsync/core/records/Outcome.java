package org.civicsync.core.records;

import java.util.Optional;
import org.civicsync.contracts.MutationResult;

/**
 * What one mutation does: its result, and the record's next state when it was applied.
 *
 * @param next present exactly when {@code result} is applied
 */
public record Outcome(MutationResult result, Optional<RecordState> next) {}
