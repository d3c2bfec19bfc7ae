package org.civicsync.contracts;

import java.util.List;

/** Body of {@code GET /v1/sync/outcomes}: final results that changed after their first answer. */
public record OutcomesResponse(List<MutationResult> outcomes, String cursor, boolean hasMore) {
  public OutcomesResponse {
    outcomes = List.copyOf(outcomes);
  }
}
