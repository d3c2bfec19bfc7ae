package org.civicsync.server.store;

import java.util.List;

/**
 * Records and moves with sequence numbers above a cursor, each ascending by seq, read from one
 * consistent snapshot. The records carry their data as the stored JSON text ({@link PulledRecord}).
 *
 * @param hasMore whether more rows or more moves matched beyond the page
 * @param head the tenant's last assigned sequence number in the same snapshot: every change up to
 *     it was visible to the query, so a reader may advance its cursor to it when nothing more matched
 */
public record PullPage(List<PulledRecord> records, List<MovedRecord> moves, boolean hasMore, long head) {
  public PullPage {
    records = List.copyOf(records);
    moves = List.copyOf(moves);
  }
}
