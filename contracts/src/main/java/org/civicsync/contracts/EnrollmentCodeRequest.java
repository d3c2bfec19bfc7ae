package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/** Body of {@code POST /v1/admin/tenants/{tenantId}/enrollment-codes}; every field optional. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EnrollmentCodeRequest(String label, Integer expiresInHours, Integer maxUses) {
  public static final int DEFAULT_EXPIRES_IN_HOURS = 72;
  public static final int DEFAULT_MAX_USES = 1;
}
