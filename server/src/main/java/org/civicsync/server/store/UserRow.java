package org.civicsync.server.store;

import java.time.Instant;
import java.util.List;

/**
 * A person of a tenant who uses devices: their roles ({@code fieldWorker}, {@code supervisor},
 * {@code admin}, {@code auditor}) and the org units whose records they may see and write (each with
 * every unit below it).
 */
public record UserRow(String tenantId, String userId, List<String> roles, List<String> orgUnits, Instant createdAt, Instant updatedAt) {
  public UserRow {
    roles = List.copyOf(roles);
    orgUnits = List.copyOf(orgUnits);
  }
}
