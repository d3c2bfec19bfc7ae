package org.civicsync.contracts;

import java.time.Instant;
import java.util.List;

/** A user of a tenant: roles and assigned org units. */
public record User(String userId, String tenantId, List<String> roles, List<String> orgUnits, Instant createdAt, Instant updatedAt) {}
