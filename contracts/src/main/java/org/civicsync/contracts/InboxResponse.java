package org.civicsync.contracts;

import java.util.List;

/** Body of {@code GET /v1/inbox}: items newest first. */
public record InboxResponse(List<InboxItemView> items) {
  public InboxResponse {
    items = List.copyOf(items);
  }
}
