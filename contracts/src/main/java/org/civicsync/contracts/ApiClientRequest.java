package org.civicsync.contracts;

/** Body of {@code POST /v1/admin/tenants/{tenantId}/api-clients}. */
public record ApiClientRequest(String name) {}
