package org.civicsync.server.rules;

import java.util.Optional;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.records.RecordState;

/**
 * A rule written in Java for what the declarative rules cannot say (e.g. "a claim above 100,000
 * needs a verified farmer"). Runs inside the push's write transaction after the conflict policy,
 * for every change that leaves a live record; a refusal rejects the mutation with
 * {@code RULE_VIOLATION} and the returned message. Implementations must be pure and fast: they
 * hold the tenant's write lock. Register them with {@code java.util.ServiceLoader} (a
 * {@code META-INF/services/org.civicsync.server.rules.RecordRule} file) or pass them to the push
 * service directly.
 */
public interface RecordRule {

  /**
   * What the rule sees.
   *
   * @param before the record before this mutation, if it existed (tombstones included)
   * @param after the live record this mutation would leave
   */
  record Input(String tenantId, Mutation mutation, Optional<RecordState> before, RecordState after) {}

  /** A message for the clerk when the change must be refused, empty to let it through. */
  Optional<String> check(Input input);
}
