package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

/** Answer to {@code GET /v1/audit/records/{collection}/{recordId}}. */
public record RecordTrail(String collection, UUID recordId, List<Entry> entries) {

  /** One mutation that named the record; absent fields do not apply. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record Entry(long seq, Instant at, UUID mutationId, UUID deviceId, String userId, MutationOp op, Long baseVersion,
      ObjectNode changes, MutationStatus status, Long version, String errorCode, ObjectNode after, ObjectNode note, Instant compactedAt) {}
}
