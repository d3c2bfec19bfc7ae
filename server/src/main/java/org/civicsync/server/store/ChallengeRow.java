package org.civicsync.server.store;

import java.time.Instant;
import java.util.UUID;

/** A single-use challenge a device signs with its key to get a new access token. */
public record ChallengeRow(UUID deviceId, String challenge, Instant expiresAt) {}
