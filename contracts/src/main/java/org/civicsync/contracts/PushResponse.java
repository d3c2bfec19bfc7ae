package org.civicsync.contracts;

import java.time.Instant;
import java.util.List;

/** Body of a 200 answer to a push: one result per mutation, in request order. */
public record PushResponse(List<MutationResult> results, Instant serverTime) {
  public PushResponse {
    results = List.copyOf(results);
  }
}
