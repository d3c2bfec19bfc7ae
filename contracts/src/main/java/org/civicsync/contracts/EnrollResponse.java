package org.civicsync.contracts;

import java.util.UUID;

/** Answer to an enrollment: the device's identity and its bearer token (shown once). */
public record EnrollResponse(UUID deviceId, String tenantId, String token) {}
