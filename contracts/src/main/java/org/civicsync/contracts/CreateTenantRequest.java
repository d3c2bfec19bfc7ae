package org.civicsync.contracts;

/** Body of {@code POST /v1/admin/tenants}. */
public record CreateTenantRequest(String tenantId) {}
