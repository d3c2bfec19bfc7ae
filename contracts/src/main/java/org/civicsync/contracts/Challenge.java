package org.civicsync.contracts;

import java.time.Instant;

/** A single-use challenge for token renewal by device key. */
public record Challenge(String challenge, Instant expiresAt) {}
