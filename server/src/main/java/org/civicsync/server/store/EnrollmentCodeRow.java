package org.civicsync.server.store;

import java.time.Instant;

/** An enrollment code as stored: only the SHA-256 of the normalised code, never the code. */
public record EnrollmentCodeRow(
    String codeHash, String tenantId, String label, Instant createdAt, Instant expiresAt, int maxUses, int uses) {}
