package org.civicsync.contracts;

import java.time.Instant;

/** A new bearer token for a device; the previous one stops working. */
public record Token(String token, Instant expiresAt) {}
