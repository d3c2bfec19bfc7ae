package org.civicsync.server.store;

import java.time.Instant;
import java.util.Optional;

/** A node of a tenant's org-unit tree (country, district, clinic…); a root has no parent. */
public record OrgUnitRow(String tenantId, String orgUnitId, Optional<String> parent, String name, Instant updatedAt) {}
