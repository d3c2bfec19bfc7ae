package org.civicsync.server.store;

import java.time.Instant;

/** A tenant. */
public record TenantRow(String tenantId, Instant createdAt) {}
