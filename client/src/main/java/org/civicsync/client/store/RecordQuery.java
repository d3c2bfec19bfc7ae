package org.civicsync.client.store;

import java.util.Map;
import java.util.Optional;

/**
 * Live records of one collection whose top-level fields equal the given values (compared as JSON
 * text for numbers and booleans, as themselves for strings), ordered by a field (then by record
 * id), skipping {@code offset}, at most {@code limit}.
 */
public record RecordQuery(String collection, Map<String, String> equals, Optional<String> orderBy, boolean descending, int offset,
    int limit) {
  public RecordQuery {
    equals = Map.copyOf(equals);
  }

  /** Every live record of the collection, by record id. */
  public static RecordQuery all(String collection) {
    return new RecordQuery(collection, Map.of(), Optional.empty(), false, 0, Integer.MAX_VALUE);
  }
}
