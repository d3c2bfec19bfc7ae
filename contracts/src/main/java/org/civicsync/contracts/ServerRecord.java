package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/** A record as the server holds it now; {@code data} is {@code null} when deleted. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ServerRecord(
    String collection, UUID recordId, long version, boolean deleted, ObjectNode data, Instant updatedAt) {}
