package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Instant;

/** A new enrollment code for one user. Shown once: the server keeps only its hash. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EnrollmentCode(String code, String tenantId, String userId, String label, Instant expiresAt, int maxUses) {}
