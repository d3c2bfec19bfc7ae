package org.civicsync.server.store;

import java.util.List;

/**
 * Records with sequence numbers above a cursor, ascending.
 *
 * @param hasMore whether more rows matched beyond the page
 */
public record PullPage(List<StoredRecord> records, boolean hasMore) {
  public PullPage {
    records = List.copyOf(records);
  }
}
