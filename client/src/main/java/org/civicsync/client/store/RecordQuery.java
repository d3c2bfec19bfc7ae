package org.civicsync.client.store;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;
import java.util.stream.Stream;

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

  /**
   * This query's filter, order, offset and limit applied to candidate records: the one definition
   * every {@link LocalStore} uses, so stores cannot drift apart.
   */
  public List<LocalRecord> select(Stream<LocalRecord> candidates) {
    return candidates
        .filter(r -> r.collection().equals(collection) && !r.deleted())
        .filter(r -> equals.entrySet().stream().allMatch(e -> matches(r.data().get(e.getKey()), e.getValue())))
        .sorted(order()).skip(offset).limit(limit).collect(Collectors.toList());
  }

  private Comparator<LocalRecord> order() {
    Comparator<LocalRecord> order = Comparator.comparing(r -> r.recordId().toString());
    if (orderBy.isPresent()) {
      String f = orderBy.get();
      Comparator<LocalRecord> byField = Comparator.comparing((LocalRecord r) -> sortKey(r.data().get(f)));
      order = byField.thenComparing(order);
    }
    return descending ? order.reversed() : order;
  }

  /** Strings compare as themselves, other scalars as their JSON text; absent and null never match. */
  static boolean matches(JsonNode v, String expected) {
    return v != null && !v.isNull() && (v.isTextual() ? v.textValue() : v.toString()).equals(expected);
  }

  /** Absent and null first, then numbers by value, then text. */
  static String sortKey(JsonNode v) {
    if (v == null || v.isNull()) {
      return "";
    }
    if (v.isNumber()) {
      // Fixed-width so text order is numeric order for the values records hold.
      return "\u0001" + String.format(Locale.ROOT, "%030.6f", v.doubleValue() + 1e15);
    }
    return "\u0002" + (v.isTextual() ? v.textValue() : v.toString());
  }
}
