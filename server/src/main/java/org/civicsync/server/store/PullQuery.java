package org.civicsync.server.store;

import java.util.Optional;
import java.util.Set;

/**
 * What one page of a (possibly scoped) change feed asks for.
 *
 * @param afterSeq only rows and moves with a greater seq
 * @param limit at most this many rows, and at most this many moves
 * @param collections only these collections; every collection when empty
 * @param visibleKeys empty: rows of any scope key; present: only rows whose scope key is in the
 *     set (plus rows without a scope key when {@code includeUnscoped})
 * @param includeUnscoped with {@code visibleKeys} present, whether rows without a scope key match
 * @param moveFromKeys moves whose {@code fromKey} is in this set are returned (none when empty)
 */
public record PullQuery(
    long afterSeq, int limit, Set<String> collections, Optional<Set<String>> visibleKeys, boolean includeUnscoped,
    Set<String> moveFromKeys) {
  public PullQuery {
    collections = Set.copyOf(collections);
    visibleKeys = visibleKeys.map(Set::copyOf);
    moveFromKeys = Set.copyOf(moveFromKeys);
  }

  /** The same query from another position. */
  public PullQuery at(long newAfterSeq) {
    return new PullQuery(newAfterSeq, limit, collections, visibleKeys, includeUnscoped, moveFromKeys);
  }

  /** Every row of the given collections, no moves: the unscoped feed. */
  public static PullQuery all(long afterSeq, int limit, Set<String> collections) {
    return new PullQuery(afterSeq, limit, collections, Optional.empty(), true, Set.of());
  }
}
