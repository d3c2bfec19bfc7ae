package org.civicsync.testing;

import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.UserRequest;
import org.civicsync.core.access.Role;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;

/**
 * Enrolls devices the way a real one enrolls (a user, a code, a fresh Ed25519 key pair) and signs
 * their mutations with their keys, so service-level tests exercise the same checks as HTTP.
 */
public final class TestDevices {
  private static final Map<UUID, Ed25519.KeyPair> KEYS = new ConcurrentHashMap<>();

  private TestDevices() {}

  /** A device of a tenant-wide admin user (every action, every record). */
  public static Caller.Device enroll(TenancyService tenancy, String tenantId) {
    return enroll(tenancy, tenantId, "admin-" + UUID.randomUUID().toString().substring(0, 8), List.of(Role.ADMIN), List.of());
  }

  /** A device of a new or replaced user with these roles and org units (which must exist). */
  public static Caller.Device enroll(TenancyService tenancy, String tenantId, String userId, List<String> roles, List<String> orgUnits) {
    tenancy.putUser(tenantId, userId, new UserRequest(userId, roles, orgUnits), true);
    return enrollFor(tenancy, tenantId, userId);
  }

  /** Another device of an existing user. */
  public static Caller.Device enrollFor(TenancyService tenancy, String tenantId, String userId) {
    EnrollmentCode code = tenancy.issueEnrollmentCode(tenantId, new EnrollmentCodeRequest(userId, null, null, null));
    Ed25519.KeyPair keys = Ed25519.generate();
    EnrollResponse e = tenancy.enroll(new EnrollRequest(code.code(), "tablet", keys.publicKey().encoded()));
    KEYS.put(e.deviceId(), keys);
    return (Caller.Device) tenancy.authenticate(Optional.of(e.token()));
  }

  /** Registers the key pair of a device enrolled elsewhere (e.g. over HTTP). */
  public static void remember(UUID deviceId, Ed25519.KeyPair keys) {
    KEYS.put(deviceId, keys);
  }

  /** The device's key pair. */
  public static Ed25519.KeyPair keys(UUID deviceId) {
    Ed25519.KeyPair k = KEYS.get(deviceId);
    if (k == null) {
      throw new IllegalStateException("no key pair for device " + deviceId + "; enroll it through TestDevices");
    }
    return k;
  }

  /** The mutation signed by the device. */
  public static Mutation sign(Caller.Device device, Mutation m) {
    return Envelopes.sign(m, device.tenantId(), device.deviceId(), keys(device.deviceId()).privateKey());
  }

  /** A push of these mutations, each signed by the device. */
  public static PushRequest signed(Caller.Device device, List<Mutation> mutations) {
    return new PushRequest(mutations.stream().map(m -> sign(device, m)).toList());
  }
}
