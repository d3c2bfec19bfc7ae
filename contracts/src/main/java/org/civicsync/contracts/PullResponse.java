package org.civicsync.contracts;

import java.util.List;

/**
 * One page of the change feed, in commit order, each record at most once at its latest state.
 *
 * @param cursor opaque; pass it to the next pull. Never moves backwards.
 * @param hasMore {@code true} when more changes were committed after this page at the time of the
 *     pull
 */
public record PullResponse(List<Change> changes, String cursor, boolean hasMore) {
  /** The largest page a pull may ask for. */
  public static final int MAX_LIMIT = 5000;
  /** The page size when a pull gives none. */
  public static final int DEFAULT_LIMIT = 500;

  public PullResponse {
    changes = List.copyOf(changes);
  }
}
