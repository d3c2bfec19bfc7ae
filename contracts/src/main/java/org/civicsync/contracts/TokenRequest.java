package org.civicsync.contracts;

import java.util.UUID;

/** Body of {@code POST /v1/devices/token}: a challenge signed with the device key. */
public record TokenRequest(UUID deviceId, String challenge, String signature) {}
