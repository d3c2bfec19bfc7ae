package org.civicsync.contracts;

import java.util.UUID;

/** Body of {@code POST /v1/devices/challenge}. */
public record ChallengeRequest(UUID deviceId) {}
