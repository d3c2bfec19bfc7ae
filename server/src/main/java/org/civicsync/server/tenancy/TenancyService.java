package org.civicsync.server.tenancy;

import java.security.MessageDigest;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.CreateTenantRequest;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.Tenant;
import org.civicsync.server.ApiException;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.EnrollmentCodeRow;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.TenantRow;

/** Tenants, enrollment and authentication. */
public final class TenancyService {
  /** Setting key under which the admin token's hash is stored. */
  public static final String ADMIN_TOKEN_HASH = "admin.token.sha256";

  private final ServerStore store;
  private final Clock clock;

  public TenancyService(ServerStore store, Clock clock) {
    this.store = store;
    this.clock = clock;
  }

  /**
   * Makes sure an admin token exists. A configured token replaces any stored one; with none
   * configured and none stored, a new one is generated and returned so the caller can print it
   * (the only time it is ever shown).
   */
  public Optional<String> ensureAdminToken(Optional<String> configured) {
    if (configured.isPresent() && !configured.get().isBlank()) {
      store.putSetting(ADMIN_TOKEN_HASH, Secrets.hash(configured.get()));
      return Optional.empty();
    }
    if (store.setting(ADMIN_TOKEN_HASH).isPresent()) {
      return Optional.empty();
    }
    String token = Secrets.newAdminToken();
    store.putSetting(ADMIN_TOKEN_HASH, Secrets.hash(token));
    return Optional.of(token);
  }

  /**
   * Who holds this bearer token.
   *
   * @throws ApiException {@code UNAUTHENTICATED}
   */
  public Caller authenticate(Optional<String> bearer) {
    if (bearer.isEmpty() || bearer.get().isBlank()) {
      throw new ApiException(ErrorCode.UNAUTHENTICATED, "missing bearer token (Authorization: Bearer <token>)");
    }
    String hash = Secrets.hash(bearer.get());
    Optional<String> admin = store.setting(ADMIN_TOKEN_HASH);
    if (admin.isPresent() && constantTimeEquals(admin.get(), hash)) {
      return new Caller.Admin();
    }
    return store.findDeviceByTokenHash(hash)
        .<Caller>map(d -> DeviceRow.API_CLIENT.equals(d.kind()) ? new Caller.ApiClient(d) : new Caller.Device(d))
        .orElseThrow(() -> new ApiException(ErrorCode.UNAUTHENTICATED, "unknown or revoked token"));
  }

  /** @throws ApiException {@code TENANT_EXISTS} */
  public Tenant createTenant(CreateTenantRequest request) {
    TenantRow row = new TenantRow(request.tenantId(), clock.instant());
    if (!store.createTenant(row)) {
      throw new ApiException(ErrorCode.TENANT_EXISTS, "tenant '" + request.tenantId() + "' already exists", "/tenantId");
    }
    return new Tenant(row.tenantId(), row.createdAt());
  }

  /** Creates the tenant unless it exists; for demo mode and start-up provisioning. */
  public void ensureTenant(String tenantId) {
    if (store.findTenant(tenantId).isEmpty()) {
      store.createTenant(new TenantRow(tenantId, clock.instant()));
    }
  }

  /** @throws ApiException {@code TENANT_NOT_FOUND} */
  public EnrollmentCode issueEnrollmentCode(String tenantId, EnrollmentCodeRequest request) {
    if (store.findTenant(tenantId).isEmpty()) {
      throw new ApiException(ErrorCode.TENANT_NOT_FOUND, "no tenant '" + tenantId + "'", "tenantId");
    }
    int hours = request.expiresInHours() == null ? EnrollmentCodeRequest.DEFAULT_EXPIRES_IN_HOURS : request.expiresInHours();
    int maxUses = request.maxUses() == null ? EnrollmentCodeRequest.DEFAULT_MAX_USES : request.maxUses();
    Instant now = clock.instant();
    String code = Secrets.newEnrollmentCode();
    Instant expiresAt = now.plus(Duration.ofHours(hours));
    store.insertEnrollmentCode(new EnrollmentCodeRow(
        Secrets.hash(Secrets.normalizeCode(code)), tenantId, request.label(), now, expiresAt, maxUses, 0));
    return new EnrollmentCode(code, tenantId, request.label(), expiresAt, maxUses);
  }

  /** @throws ApiException {@code ENROLLMENT_CODE_INVALID} */
  public EnrollResponse enroll(EnrollRequest request) {
    Instant now = clock.instant();
    EnrollmentCodeRow code = store.redeemEnrollmentCode(Secrets.hash(Secrets.normalizeCode(request.enrollmentCode())), now)
        .orElseThrow(() -> new ApiException(ErrorCode.ENROLLMENT_CODE_INVALID,
            "the enrollment code is unknown, expired or used up", "/enrollmentCode"));
    String token = Secrets.newDeviceToken();
    UUID deviceId = UUID.randomUUID();
    store.insertDevice(new DeviceRow(deviceId, code.tenantId(), request.deviceName(), request.publicKey(),
        Secrets.hash(token), now, null, null, DeviceRow.DEVICE));
    return new EnrollResponse(deviceId, code.tenantId(), token);
  }

  /**
   * Issues an API-client credential for an online back-office system of the tenant.
   *
   * @throws ApiException {@code TENANT_NOT_FOUND}
   */
  public org.civicsync.contracts.ApiClientCredential issueApiClient(String tenantId, org.civicsync.contracts.ApiClientRequest request) {
    if (store.findTenant(tenantId).isEmpty()) {
      throw new ApiException(ErrorCode.TENANT_NOT_FOUND, "no tenant '" + tenantId + "'", "tenantId");
    }
    String token = Secrets.newApiClientToken();
    UUID id = UUID.randomUUID();
    store.insertDevice(new DeviceRow(id, tenantId, request.name(), null, Secrets.hash(token), clock.instant(), null, null,
        DeviceRow.API_CLIENT));
    return new org.civicsync.contracts.ApiClientCredential(id, tenantId, request.name(), token);
  }

  private static boolean constantTimeEquals(String a, String b) {
    return MessageDigest.isEqual(a.getBytes(StandardCharsets.US_ASCII), b.getBytes(StandardCharsets.US_ASCII));
  }
}
