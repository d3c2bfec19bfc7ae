package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;

/**
 * An enrolled device, or an API client of a back-office system. The token is stored only as its
 * SHA-256; {@code publicKey}, {@code lastPushAt} and {@code lastPullAt} are {@code null} until
 * known.
 *
 * @param publicKey the device's Ed25519 public key, raw 32 bytes as base64url without padding;
 *     {@code null} for an API client (and for devices enrolled before keys were required)
 * @param kind {@link #DEVICE} or {@link #API_CLIENT}
 * @param userId the user the device was enrolled for; {@code null} for an API client (and for
 *     devices enrolled before users existed, which may do nothing until re-enrolled)
 * @param tokenExpiresAt when the current token stops working; {@code null} for a token that does
 *     not expire (API clients)
 * @param revokedAt when an admin revoked the device; {@code null} while it is not revoked
 */
public record DeviceRow(
    UUID deviceId,
    String tenantId,
    String name,
    String publicKey,
    String tokenHash,
    Instant enrolledAt,
    Instant lastPushAt,
    Instant lastPullAt,
    String kind,
    String userId,
    Instant tokenExpiresAt,
    Instant revokedAt) {

  /** A field device: syncs through push and pull. */
  public static final String DEVICE = "device";
  /** An online back-office system: reads and writes through the records API. */
  public static final String API_CLIENT = "apiClient";

  public boolean revoked() {
    return revokedAt != null;
  }
}
