package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;
import java.util.UUID;

/**
 * Body of {@code GET /v1/records/{collection}}: live records ordered by id.
 *
 * @param next pass as {@code after} for the next page; {@code null} on the last page
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record RecordsPage(List<ServerRecord> records, UUID next) {
  public RecordsPage {
    records = List.copyOf(records);
  }
}
