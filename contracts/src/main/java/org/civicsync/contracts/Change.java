package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/** A record at its latest state in the change feed; {@code data} is {@code null} for a delete. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Change(
    String collection, UUID recordId, long version, ChangeOp op, ObjectNode data, Instant updatedAt) {}
