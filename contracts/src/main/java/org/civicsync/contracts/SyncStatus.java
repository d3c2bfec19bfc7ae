package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Instant;
import java.util.UUID;

/** Body of {@code GET /v1/sync/status}; the last-* fields are absent until the first push/pull. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SyncStatus(
    UUID deviceId, String tenantId, Instant lastPushAt, Instant lastPullAt, Instant serverTime) {}
