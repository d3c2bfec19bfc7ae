package org.civicsync.server.pull;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonRawValue;
import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.PullResponse;
import org.civicsync.server.store.StoreJson;

/**
 * One page of the change feed as it goes on the wire: serialised with the wire mapper it is
 * exactly a {@link PullResponse} (same properties, same order), but each change's data is the
 * stored JSON text, written into the page as it is instead of being parsed into a tree and written
 * out again. {@link #toResponse} gives the parsed form.
 *
 * @param hasMore see {@link PullResponse#hasMore()}
 */
public record FeedPage(List<FeedPage.FeedChange> changes, String cursor, boolean hasMore) {
  public FeedPage {
    changes = List.copyOf(changes);
  }

  /**
   * A {@link Change} whose data is compact JSON text; {@code null} for a delete or a remove.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record FeedChange(String collection, UUID recordId, long version, ChangeOp op, @JsonRawValue String data, Instant updatedAt) {
    Change toChange() {
      return new Change(collection, recordId, version, op, data == null ? null : StoreJson.object(data), updatedAt);
    }
  }

  /**
   * Writes this page as JSON to {@code out} (and closes it, as the mapper does): the same bytes as
   * serialising it with the wire mapper, written field by field instead of through the mapper's
   * reflective record serialisers, which were a quarter of a pull's server time.
   */
  public void writeTo(java.io.OutputStream out) throws java.io.IOException {
    try (com.fasterxml.jackson.core.JsonGenerator g = org.civicsync.core.json.Json.mapper().getFactory().createGenerator(out,
        com.fasterxml.jackson.core.JsonEncoding.UTF8)) {
      g.writeStartObject();
      g.writeArrayFieldStart("changes");
      for (FeedChange c : changes) {
        g.writeStartObject();
        g.writeStringField("collection", c.collection());
        g.writeStringField("recordId", c.recordId().toString());
        g.writeNumberField("version", c.version());
        g.writeStringField("op", c.op().wire());
        if (c.data() != null) {
          g.writeFieldName("data");
          g.writeRawValue(c.data());
        }
        if (c.updatedAt() != null) {
          g.writeStringField("updatedAt", java.time.format.DateTimeFormatter.ISO_INSTANT.format(c.updatedAt()));
        }
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeStringField("cursor", cursor);
      g.writeBooleanField("hasMore", hasMore);
      g.writeEndObject();
    }
  }

  /** The same page with each change's data parsed. */
  public PullResponse toResponse() {
    return new PullResponse(changes.stream().map(FeedChange::toChange).toList(), cursor, hasMore);
  }
}
