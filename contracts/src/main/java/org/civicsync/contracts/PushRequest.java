package org.civicsync.contracts;

import java.util.List;

/** Body of {@code POST /v1/sync/push}: up to 5000 mutations, applied in order. */
public record PushRequest(List<Mutation> mutations) {
  /** The most mutations one push may carry. */
  public static final int MAX_MUTATIONS = 5000;

  public PushRequest {
    mutations = List.copyOf(mutations);
  }
}
