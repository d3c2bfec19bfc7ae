package org.civicsync.server.tenancy;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import org.civicsync.contracts.ApiClientCredential;
import org.civicsync.contracts.ApiClientRequest;
import org.civicsync.contracts.Challenge;
import org.civicsync.contracts.ChallengeRequest;
import org.civicsync.contracts.CreateTenantRequest;
import org.civicsync.contracts.Device;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.OrgUnit;
import org.civicsync.contracts.OrgUnitRequest;
import org.civicsync.contracts.Tenant;
import org.civicsync.contracts.Token;
import org.civicsync.contracts.TokenRequest;
import org.civicsync.contracts.User;
import org.civicsync.contracts.UserRequest;
import org.civicsync.core.access.Role;
import org.civicsync.core.access.Scope;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.server.ApiException;
import org.civicsync.server.audit.Actors;
import org.civicsync.server.audit.AuditedStore;
import org.civicsync.server.store.ChallengeRow;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.OrgUnitRow;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.store.UserRow;

/**
 * Tenants, users, org units, devices and their credentials: enrollment with a device key, tokens
 * that expire and are renewed by signing a challenge, revocation, and authentication of every
 * request into a {@link Caller} with its {@link Access}.
 */
public final class TenancyService {
  /** Setting key under which the admin token's hash is stored. */
  public static final String ADMIN_TOKEN_HASH = "admin.token.sha256";
  /** How long a device token works unless configured otherwise. */
  public static final Duration DEFAULT_TOKEN_TTL = Duration.ofHours(24);
  /** How long a renewal challenge may be answered. */
  public static final Duration CHALLENGE_TTL = Duration.ofMinutes(5);

  private final ServerStore reads;
  private final AuditedStore store;
  private final Clock clock;
  private final Duration tokenTtl;

  public TenancyService(ServerStore store, Clock clock) {
    this(store, clock, DEFAULT_TOKEN_TTL);
  }

  /** @param tokenTtl how long a device token works after enrollment or renewal */
  public TenancyService(ServerStore store, Clock clock, Duration tokenTtl) {
    this.store = AuditedStore.wrap(store, clock);
    this.reads = this.store;
    this.clock = clock;
    this.tokenTtl = tokenTtl;
  }

  /**
   * Makes sure an admin token exists. A configured token replaces any stored one; with none
   * configured and none stored, a new one is generated and returned so the caller can print it
   * (the only time it is ever shown).
   */
  public Optional<String> ensureAdminToken(Optional<String> configured) {
    if (configured.isPresent() && !configured.get().isBlank()) {
      reads.putSetting(ADMIN_TOKEN_HASH, Secrets.hash(configured.get()));
      return Optional.empty();
    }
    if (reads.setting(ADMIN_TOKEN_HASH).isPresent()) {
      return Optional.empty();
    }
    String token = Secrets.newAdminToken();
    reads.putSetting(ADMIN_TOKEN_HASH, Secrets.hash(token));
    return Optional.of(token);
  }

  /**
   * Who holds this bearer token, with what access.
   *
   * @throws ApiException {@code UNAUTHENTICATED}, {@code TOKEN_EXPIRED}, {@code DEVICE_REVOKED}
   */
  public Caller authenticate(Optional<String> bearer) {
    if (bearer.isEmpty() || bearer.get().isBlank()) {
      throw new ApiException(ErrorCode.UNAUTHENTICATED, "missing bearer token (Authorization: Bearer <token>)");
    }
    String hash = Secrets.hash(bearer.get());
    // Devices first: nearly every request is a device's, and a token is either a device's or the
    // admin's (both are random secrets), so the admin's hash is read only when no device has this
    // one — one database round trip less on every push and every page of a pull.
    Optional<DeviceRow> device = reads.findDeviceByTokenHash(hash);
    if (device.isEmpty()) {
      Optional<String> admin = reads.setting(ADMIN_TOKEN_HASH);
      if (admin.isPresent() && constantTimeEquals(admin.get(), hash)) {
        return new Caller.Admin();
      }
      throw new ApiException(ErrorCode.UNAUTHENTICATED, "unknown token");
    }
    DeviceRow d = device.get();
    if (d.revoked()) {
      throw new ApiException(ErrorCode.DEVICE_REVOKED, "this device was revoked at " + d.revokedAt() + "; enroll again with a new code");
    }
    if (d.tokenExpiresAt() != null && !clock.instant().isBefore(d.tokenExpiresAt())) {
      throw new ApiException(ErrorCode.TOKEN_EXPIRED, "the token expired at " + d.tokenExpiresAt()
          + "; renew it with POST /v1/devices/challenge and POST /v1/devices/token");
    }
    if (DeviceRow.API_CLIENT.equals(d.kind())) {
      return new Caller.ApiClient(d);
    }
    return new Caller.Device(d, accessOf(d));
  }

  /** The access of a device's user now: roles, and the org units with everything below them. */
  public Access accessOf(DeviceRow d) {
    if (d.userId() == null) {
      return Access.none("");
    }
    Optional<UserRow> user = reads.findUser(d.tenantId(), d.userId());
    if (user.isEmpty()) {
      return Access.none(d.userId());
    }
    UserRow u = user.get();
    if (u.roles().contains(Role.ADMIN)) {
      return new Access(u.userId(), Set.copyOf(u.roles()), Scope.unrestricted());
    }
    Map<String, Optional<String>> tree = new HashMap<>();
    for (OrgUnitRow o : reads.orgUnits(d.tenantId())) {
      tree.put(o.orgUnitId(), o.parent());
    }
    return new Access(u.userId(), Set.copyOf(u.roles()), Scope.expand(u.orgUnits(), tree));
  }

  /** @throws ApiException {@code TENANT_EXISTS} */
  public Tenant createTenant(CreateTenantRequest request) {
    TenantRow row = new TenantRow(request.tenantId(), clock.instant());
    if (!reads.createTenant(row)) {
      throw new ApiException(ErrorCode.TENANT_EXISTS, "tenant '" + request.tenantId() + "' already exists", "/tenantId");
    }
    store.transact(row.tenantId(), Actors.admin(), tx -> {
      tx.action(Json.mapper().createObjectNode().put("type", "tenant.created").put("tenantId", row.tenantId()));
      return null;
    });
    return new Tenant(row.tenantId(), row.createdAt());
  }

  /** Creates the tenant unless it exists; for demo mode and start-up provisioning. */
  public void ensureTenant(String tenantId) {
    if (reads.findTenant(tenantId).isEmpty()) {
      createTenant(new CreateTenantRequest(tenantId));
    }
  }

  // ---------------------------------------------------------------- org units and users

  /**
   * Creates or replaces an org unit.
   *
   * @throws ApiException {@code TENANT_NOT_FOUND}, {@code ORG_UNIT_UNKNOWN} (parent), {@code ORG_UNIT_CYCLE}
   */
  public OrgUnit putOrgUnit(String tenantId, String orgUnitId, OrgUnitRequest request) {
    requireTenant(tenantId);
    checkId(orgUnitId, "orgUnitId", "[A-Za-z0-9._:-]{1,128}", "A-Z a-z 0-9 . _ : -");
    Instant now = clock.instant();
    OrgUnitRow row = new OrgUnitRow(tenantId, orgUnitId, Optional.ofNullable(request.parent()), request.name(), now);
    // Read before the write transaction, so an admin write needs one connection, not two. Two
    // concurrent re-parentings could still form a loop; scope expansion stops at loops.
    Map<String, Optional<String>> tree = new HashMap<>();
    reads.orgUnits(tenantId).forEach(o -> tree.put(o.orgUnitId(), o.parent()));
    store.transact(tenantId, Actors.admin(), tx -> {
      if (request.parent() != null) {
        if (!tree.containsKey(request.parent())) {
          throw new ApiException(ErrorCode.ORG_UNIT_UNKNOWN, "no org unit '" + request.parent() + "' to be the parent", "/parent");
        }
        Optional<String> up = Optional.of(request.parent());
        Set<String> seen = new LinkedHashSet<>();
        while (up.isPresent() && seen.add(up.get())) {
          if (up.get().equals(orgUnitId)) {
            throw new ApiException(ErrorCode.ORG_UNIT_CYCLE, "'" + request.parent() + "' is below '" + orgUnitId
                + "': it cannot be its parent", "/parent");
          }
          up = tree.getOrDefault(up.get(), Optional.empty());
        }
      }
      tx.putOrgUnit(row);
      return null;
    });
    return view(row);
  }

  public List<OrgUnit> orgUnits(String tenantId) {
    requireTenant(tenantId);
    return reads.orgUnits(tenantId).stream().map(TenancyService::view).toList();
  }

  /**
   * Creates a user ({@code POST}); with {@code replace} ({@code PUT}) creates or replaces one.
   * Changing a user's org units changes what their devices receive from their next pull on.
   *
   * @throws ApiException {@code TENANT_NOT_FOUND}, {@code USER_EXISTS}, {@code ORG_UNIT_UNKNOWN}
   */
  public User putUser(String tenantId, String userId, UserRequest request, boolean replace) {
    requireTenant(tenantId);
    checkId(userId, "userId", "[A-Za-z0-9._@-]{1,128}", "A-Z a-z 0-9 . _ @ -");
    List<String> units = request.orgUnits() == null ? List.of() : List.copyOf(request.orgUnits());
    Instant now = clock.instant();
    // Read before the write transaction, so an admin write needs one connection, not two.
    Optional<UserRow> existing = reads.findUser(tenantId, userId);
    if (existing.isPresent() && !replace) {
      throw new ApiException(ErrorCode.USER_EXISTS, "user '" + userId + "' already exists; PUT …/users/" + userId + " replaces it",
          "/userId");
    }
    Set<String> known = new java.util.HashSet<>();
    reads.orgUnits(tenantId).forEach(o -> known.add(o.orgUnitId()));
    for (int i = 0; i < units.size(); i++) {
      if (!known.contains(units.get(i))) {
        throw new ApiException(ErrorCode.ORG_UNIT_UNKNOWN, "no org unit '" + units.get(i) + "'", "/orgUnits/" + i);
      }
    }
    UserRow row = store.transact(tenantId, Actors.admin(), tx -> {
      UserRow u = new UserRow(tenantId, userId, request.roles(), units, existing.map(UserRow::createdAt).orElse(now), now);
      tx.putUser(u);
      return u;
    });
    return view(row);
  }

  public List<User> users(String tenantId) {
    requireTenant(tenantId);
    return reads.users(tenantId).stream().map(TenancyService::view).toList();
  }

  public List<Device> devices(String tenantId) {
    requireTenant(tenantId);
    return reads.devices(tenantId).stream().map(TenancyService::view).toList();
  }

  // ---------------------------------------------------------------- enrollment and tokens

  /** @throws ApiException {@code TENANT_NOT_FOUND}, {@code USER_NOT_FOUND} */
  public EnrollmentCode issueEnrollmentCode(String tenantId, EnrollmentCodeRequest request) {
    requireTenant(tenantId);
    if (reads.findUser(tenantId, request.userId()).isEmpty()) {
      throw new ApiException(ErrorCode.USER_NOT_FOUND, "no user '" + request.userId() + "' in tenant '" + tenantId
          + "'; create the user first", "/userId");
    }
    int hours = request.expiresInHours() == null ? EnrollmentCodeRequest.DEFAULT_EXPIRES_IN_HOURS : request.expiresInHours();
    int maxUses = request.maxUses() == null ? EnrollmentCodeRequest.DEFAULT_MAX_USES : request.maxUses();
    Instant now = clock.instant();
    String code = Secrets.newEnrollmentCode();
    Instant expiresAt = now.plus(Duration.ofHours(hours));
    store.transact(tenantId, Actors.admin(), tx -> {
      tx.insertEnrollmentCode(new EnrollmentCodeRow(
          Secrets.hash(Secrets.normalizeCode(code)), tenantId, request.label(), now, expiresAt, maxUses, 0, request.userId()));
      return null;
    });
    return new EnrollmentCode(code, tenantId, request.userId(), request.label(), expiresAt, maxUses);
  }

  /**
   * Enrolls a device for the code's user, registering its Ed25519 public key.
   *
   * @throws ApiException {@code ENROLLMENT_CODE_INVALID}, {@code INVALID_REQUEST} (not a valid key)
   */
  public EnrollResponse enroll(EnrollRequest request) {
    Ed25519.PublicKey key = Ed25519.publicKey(request.publicKey()).orElseThrow(() -> new ApiException(ErrorCode.INVALID_REQUEST,
        "publicKey is not an Ed25519 public key (raw 32 bytes, base64url without padding)", "/publicKey"));
    Instant now = clock.instant();
    String codeHash = Secrets.hash(Secrets.normalizeCode(request.enrollmentCode()));
    ApiException invalid = new ApiException(ErrorCode.ENROLLMENT_CODE_INVALID,
        "the enrollment code is unknown, expired or used up", "/enrollmentCode");
    EnrollmentCodeRow found = reads.findEnrollmentCode(codeHash).orElseThrow(() -> invalid);
    if (found.userId() == null) {
      throw invalid;
    }
    String tenantId = found.tenantId();
    String token = Secrets.newDeviceToken();
    UUID deviceId = UUID.randomUUID();
    Instant expiresAt = now.plus(tokenTtl);
    String userId = store.transact(tenantId, Actors.enrollment(), tx -> {
      EnrollmentCodeRow code = tx.redeemEnrollmentCode(codeHash, now).orElseThrow(() -> invalid);
      tx.actor(Actors.device(deviceId, code.userId()));
      tx.insertDevice(new DeviceRow(deviceId, tenantId, request.deviceName(), key.encoded(),
          Secrets.hash(token), now, null, null, DeviceRow.DEVICE, code.userId(), expiresAt, null));
      return code.userId();
    });
    return new EnrollResponse(deviceId, tenantId, userId, token, expiresAt);
  }

  /**
   * A single-use challenge for renewing the device's token by key.
   *
   * @throws ApiException {@code DEVICE_NOT_FOUND}, {@code DEVICE_REVOKED}
   */
  public Challenge challenge(ChallengeRequest request) {
    DeviceRow d = keyedDevice(request.deviceId());
    String challenge = Secrets.newChallenge();
    Instant expiresAt = clock.instant().plus(CHALLENGE_TTL);
    reads.insertChallenge(new ChallengeRow(d.deviceId(), challenge, expiresAt));
    return new Challenge(challenge, expiresAt);
  }

  /**
   * A new token for a device that signed one of its challenges with its key; the old token
   * stops working.
   *
   * @throws ApiException {@code DEVICE_NOT_FOUND}, {@code DEVICE_REVOKED}, {@code CHALLENGE_INVALID}
   */
  public Token renewToken(TokenRequest request) {
    DeviceRow d = keyedDevice(request.deviceId());
    Instant now = clock.instant();
    ApiException invalid = new ApiException(ErrorCode.CHALLENGE_INVALID,
        "the challenge is unknown, used or expired, or the signature does not verify; ask for a new challenge", "/signature");
    ChallengeRow c = reads.takeChallenge(d.deviceId(), request.challenge(), now).orElseThrow(() -> invalid);
    Ed25519.PublicKey key = Ed25519.publicKey(d.publicKey()).orElseThrow(() -> invalid);
    if (!key.verify(Envelopes.tokenSigningInput(d.tenantId(), d.deviceId(), c.challenge()), request.signature())) {
      throw invalid;
    }
    String token = Secrets.newDeviceToken();
    Instant expiresAt = now.plus(tokenTtl);
    // A revocation landing after the check above leaves a token that authenticate() refuses anyway.
    store.transact(d.tenantId(), Actors.device(d.deviceId(), d.userId() == null ? "" : d.userId()), tx -> {
      tx.renewToken(d.deviceId(), Secrets.hash(token), expiresAt);
      return null;
    });
    return new Token(token, expiresAt);
  }

  private DeviceRow keyedDevice(UUID deviceId) {
    DeviceRow d = reads.findDevice(deviceId).filter(x -> DeviceRow.DEVICE.equals(x.kind()))
        .orElseThrow(() -> new ApiException(ErrorCode.DEVICE_NOT_FOUND, "no device " + deviceId, "/deviceId"));
    if (d.revoked()) {
      throw new ApiException(ErrorCode.DEVICE_REVOKED, "this device was revoked at " + d.revokedAt() + "; enroll again with a new code");
    }
    return d;
  }

  /**
   * Revokes a device or API client: its token stops working at once and it can get no other;
   * what it sent before stays.
   *
   * @throws ApiException {@code DEVICE_NOT_FOUND}
   */
  public Device revoke(UUID deviceId) {
    DeviceRow d = reads.findDevice(deviceId)
        .orElseThrow(() -> new ApiException(ErrorCode.DEVICE_NOT_FOUND, "no device " + deviceId, "deviceId", 404, null));
    if (!d.revoked()) {
      store.transact(d.tenantId(), Actors.admin(), tx -> tx.revokeDevice(deviceId, clock.instant()));
    }
    return view(reads.findDevice(deviceId).orElseThrow());
  }

  /**
   * Issues an API-client credential for an online back-office system of the tenant.
   *
   * @throws ApiException {@code TENANT_NOT_FOUND}
   */
  public ApiClientCredential issueApiClient(String tenantId, ApiClientRequest request) {
    requireTenant(tenantId);
    String token = Secrets.newApiClientToken();
    UUID id = UUID.randomUUID();
    store.transact(tenantId, Actors.admin(), tx -> {
      tx.insertDevice(new DeviceRow(id, tenantId, request.name(), null, Secrets.hash(token), clock.instant(), null, null,
          DeviceRow.API_CLIENT, null, null, null));
      return null;
    });
    return new ApiClientCredential(id, tenantId, request.name(), token);
  }

  // ---------------------------------------------------------------- helpers

  private void requireTenant(String tenantId) {
    if (reads.findTenant(tenantId).isEmpty()) {
      throw new ApiException(ErrorCode.TENANT_NOT_FOUND, "no tenant '" + tenantId + "'", "tenantId");
    }
  }

  /** Ids in paths follow the same patterns as in bodies (user-request and org-unit-request schemas). */
  private static void checkId(String id, String what, String pattern, String allowed) {
    if (!id.matches(pattern)) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, what + " must be 1 to 128 of " + allowed, what);
    }
  }

  static OrgUnit view(OrgUnitRow o) {
    return new OrgUnit(o.orgUnitId(), o.tenantId(), o.parent().orElse(null), o.name(), o.updatedAt());
  }

  static User view(UserRow u) {
    return new User(u.userId(), u.tenantId(), u.roles(), u.orgUnits(), u.createdAt(), u.updatedAt());
  }

  /** A device as the admin API shows it. */
  public static Device view(DeviceRow d) {
    return new Device(d.deviceId(), d.tenantId(), d.kind(), d.name(), d.userId(), d.enrolledAt(), d.lastPushAt(), d.lastPullAt(),
        d.tokenExpiresAt(), d.revokedAt());
  }

  private static boolean constantTimeEquals(String a, String b) {
    return MessageDigest.isEqual(a.getBytes(StandardCharsets.US_ASCII), b.getBytes(StandardCharsets.US_ASCII));
  }
}
