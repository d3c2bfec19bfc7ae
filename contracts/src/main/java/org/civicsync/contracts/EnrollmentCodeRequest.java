package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * Body of {@code POST /v1/admin/tenants/{tenantId}/enrollment-codes}.
 *
 * @param userId the user a device enrolled with the code is bound to (required)
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EnrollmentCodeRequest(String userId, String label, Integer expiresInHours, Integer maxUses) {
  public static final int DEFAULT_EXPIRES_IN_HOURS = 72;
  public static final int DEFAULT_MAX_USES = 1;
}
