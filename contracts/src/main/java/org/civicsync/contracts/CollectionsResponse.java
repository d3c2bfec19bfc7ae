package org.civicsync.contracts;

import java.util.List;

/** Body of {@code GET /v1/collections}. */
public record CollectionsResponse(List<CollectionDefinition> collections) {
  public CollectionsResponse {
    collections = List.copyOf(collections);
  }
}
