package org.civicsync.contracts;

import java.time.Instant;
import java.util.UUID;

/** Answer to an enrollment: the device's identity, its user, and its bearer token (shown once). */
public record EnrollResponse(UUID deviceId, String tenantId, String userId, String token, Instant expiresAt) {}
