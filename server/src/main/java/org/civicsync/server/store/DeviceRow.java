package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;

/**
 * An enrolled device. The token is stored only as its SHA-256; {@code publicKey}, {@code
 * lastPushAt} and {@code lastPullAt} are {@code null} until known.
 */
public record DeviceRow(
    UUID deviceId,
    String tenantId,
    String name,
    String publicKey,
    String tokenHash,
    Instant enrolledAt,
    Instant lastPushAt,
    Instant lastPullAt) {}
