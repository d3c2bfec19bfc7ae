package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Instant;
import java.util.UUID;

/** A device or API client as the admin API shows it; absent fields are unknown or not applicable. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Device(UUID deviceId, String tenantId, String kind, String name, String userId, Instant enrolledAt, Instant lastPushAt,
    Instant lastPullAt, Instant tokenExpiresAt, Instant revokedAt) {}
