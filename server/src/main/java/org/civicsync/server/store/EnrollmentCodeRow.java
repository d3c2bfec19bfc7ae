package org.civicsync.server.store;

import java.time.Instant;

/**
 * An enrollment code as stored: only the SHA-256 of the normalised code, never the code.
 *
 * @param userId the user a device enrolled with it is bound to ({@code null} only for codes
 *     issued before users existed; such codes no longer enroll)
 */
public record EnrollmentCodeRow(
    String codeHash, String tenantId, String label, Instant createdAt, Instant expiresAt, int maxUses, int uses, String userId) {}
