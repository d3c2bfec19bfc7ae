package org.civicsync.server.store;

import java.time.LocalDate;
import java.util.UUID;

/**
 * Bytes a device's requests and responses carried on one day (UTC), as the HTTP layer counted
 * them: request bodies as received (compressed when the device compressed them) and response
 * bodies as sent.
 */
public record DeviceTraffic(String tenantId, UUID deviceId, LocalDate day, long bytesIn, long bytesOut) {}
