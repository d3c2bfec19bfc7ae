package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Instant;

/** A node of the tenant's org-unit tree. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record OrgUnit(String orgUnitId, String tenantId, String parent, String name, Instant updatedAt) {}
