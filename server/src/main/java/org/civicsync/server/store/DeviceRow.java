package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;

/**
 * An enrolled device, or an API client of a back-office system. The token is stored only as its
 * SHA-256; {@code publicKey}, {@code lastPushAt} and {@code lastPullAt} are {@code null} until
 * known.
 *
 * @param kind {@link #DEVICE} or {@link #API_CLIENT}
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
    String kind) {

  /** A field device: syncs through push and pull. */
  public static final String DEVICE = "device";
  /** An online back-office system: reads and writes through the records API. */
  public static final String API_CLIENT = "apiClient";
}
