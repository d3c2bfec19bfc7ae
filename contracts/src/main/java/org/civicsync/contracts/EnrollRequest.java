package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * Body of {@code POST /v1/devices/enroll}.
 *
 * @param publicKey the device's Ed25519 public key, raw 32 bytes, base64url without padding
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record EnrollRequest(String enrollmentCode, String deviceName, String publicKey) {}
