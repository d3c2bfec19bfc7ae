package org.civicsync.contracts;

import java.time.Instant;

/** A tenant: one isolated public service deployment (e.g. a ministry's clinic programme). */
public record Tenant(String tenantId, Instant createdAt) {}
