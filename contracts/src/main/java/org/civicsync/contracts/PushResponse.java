package org.civicsync.contracts;

import java.time.Instant;
import java.util.List;

/**
 * Body of a 200 answer to a push: one result per mutation, in request order.
 *
 * <p>A push sent with {@code Prefer: return=minimal} is answered in the {@linkplain #minimal()
 * minimal form}: no result names its mutation or record, because its position does. Over a slow
 * link that is most of the answer's bytes (two random ids per result); {@link #withIdsOf} reads it
 * back.
 */
public record PushResponse(List<MutationResult> results, Instant serverTime) {
  /** The header value a client sends as {@code Prefer} and a server echoes in {@code Preference-Applied}. */
  public static final String RETURN_MINIMAL = "return=minimal";

  public PushResponse {
    results = List.copyOf(results);
  }

  /** This answer with every result {@linkplain MutationResult#withoutIds() without its ids}. */
  public PushResponse minimal() {
    return new PushResponse(results.stream().map(MutationResult::withoutIds).collect(java.util.stream.Collectors.toList()), serverTime);
  }

  /**
   * This answer with each result that lacks its ids given those of the mutation in the same
   * position of the request; results that carry ids are kept as they are.
   *
   * @throws IllegalArgumentException if the answer does not hold one result per mutation, or a
   *     result that carries ids names another mutation than the one in its position
   */
  public PushResponse withIdsOf(List<Mutation> request) {
    if (request.size() != results.size()) {
      throw new IllegalArgumentException("the push sent " + request.size() + " mutations and got " + results.size() + " results");
    }
    List<MutationResult> out = new java.util.ArrayList<>(results.size());
    for (int i = 0; i < results.size(); i++) {
      MutationResult r = results.get(i);
      Mutation m = request.get(i);
      if (r.mutationId() == null) {
        out.add(r.withIds(m.mutationId(), m.recordId()));
      } else if (r.mutationId().equals(m.mutationId())) {
        out.add(r);
      } else {
        throw new IllegalArgumentException("result " + i + " answers " + r.mutationId() + ", not " + m.mutationId());
      }
    }
    return new PushResponse(out, serverTime);
  }
}
