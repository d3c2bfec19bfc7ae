package org.civicsync.server.store;

import java.util.UUID;

/** A device within its tenant. */
public record DeviceKey(String tenantId, UUID deviceId) {}
