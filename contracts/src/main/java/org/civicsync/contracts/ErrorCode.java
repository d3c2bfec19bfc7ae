package org.civicsync.contracts;

/**
 * The error-code catalogue: every code the server returns, in a whole-request error body or in a
 * per-mutation result. docs/protocol.md lists the same codes; a test keeps the two in step.
 *
 * <p>{@link #httpStatus()} is the status of a whole-request error. Codes that only ever appear
 * inside a push result (a rejected or conflicting mutation in a 200 response) carry 200.
 */
public enum ErrorCode {
  // Whole-request errors.
  MALFORMED_JSON(400, "The body is not well-formed JSON (or not valid in its Content-Encoding, gzip or zstd)."),
  INVALID_REQUEST(400, "The body or a parameter does not match the contract schema; `field` points at the first offending place."),
  LIMIT_OUT_OF_RANGE(400, "`limit` is not an integer in the route's range (pull and outcomes: 1 to 5000; inbox: 1 to 1000)."),
  CURSOR_INVALID(400, "The cursor was not issued by this server for this tenant and collection filter, or is ahead of the server (e.g. after a restore from backup): pull again from the beginning."),
  RESYNC_REQUIRED(410, "The cursor is older than the tenant's compaction watermark: deletions it has not seen were compacted away. Drop the local records that have no pending changes and pull again from the beginning; keep the outbox."),
  JSON_LIMITS_EXCEEDED(400, "The JSON nests deeper than 64 levels or holds a string longer than 1 MiB; nothing was read further."),
  UNAUTHENTICATED(401, "The bearer token is missing or unknown."),
  TOKEN_EXPIRED(401, "The device's access token has expired. Renew it without a password: POST /v1/devices/challenge, sign the challenge with the device key, POST /v1/devices/token; then retry (signed mutations made offline stay valid)."),
  CHALLENGE_INVALID(401, "The token request's challenge is unknown, used or expired, or its signature does not verify with the device's key: ask for a new challenge."),
  FORBIDDEN(403, "The caller may not do this: a device token on the admin API, or a role without the action on the collection. Inside a push result: the user's roles do not grant create, update or delete on the collection; the change is rejected and listed in the inbox."),
  DEVICE_REVOKED(403, "An admin revoked this device: its tokens no longer work and its pushes are refused. What it sent before stays. Enroll again with a new code if this was a mistake."),
  NOT_FOUND(404, "No such route or resource."),
  METHOD_NOT_ALLOWED(405, "The route exists but not with this method."),
  IDEMPOTENCY_KEY_REUSED(422, "This Idempotency-Key was already used by this caller for a request with a different body; the first request stands."),
  RATE_LIMITED(429, "Too many requests from this device, API client or address; wait for the seconds in Retry-After."),
  USER_NOT_FOUND(404, "No user with this id in the tenant."),
  USER_EXISTS(409, "A user with this id already exists (PUT …/users/{userId} replaces one)."),
  DEVICE_NOT_FOUND(404, "No device with this id."),
  ORG_UNIT_UNKNOWN(422, "The request names an org unit (parent or assignment) that does not exist in the tenant."),
  ORG_UNIT_CYCLE(409, "The new parent would make the org unit its own ancestor."),
  VERSION_MISMATCH(412, "If-Match names a version that is not the record's current one: nothing was written; the body carries the current record."),
  PRECONDITION_REQUIRED(428, "A write to an existing record needs If-Match with the version it was based on (or If-None-Match: * to create)."),
  TENANT_EXISTS(409, "A tenant with this id already exists."),
  TENANT_NOT_FOUND(404, "No tenant with this id."),
  INBOX_ITEM_NOT_FOUND(404, "No inbox item with this id in the caller's tenant."),
  INBOX_ITEM_RESOLVED(409, "The inbox item was already resolved (with another Idempotency-Key, or none); the body of a 409 names how."),
  RESOLUTION_REJECTED(422, "The resolution cannot be applied: the resulting record breaks the collection's schema or a rule (the message names the code, e.g. CAPACITY_EXCEEDED). The item stays open."),
  ENROLLMENT_CODE_INVALID(403, "The enrollment code is unknown, expired or used up."),
  UPLOAD_MISMATCH(409, "A resumed push body does not fit what the server holds of it: Upload-Offset is past the bytes that arrived, the body ended short of Upload-Length, or the assembled body's SHA-256 is not its Upload-Key. The Upload-Offset header of the answer says where to resume (0: from the start)."),
  PAYLOAD_TOO_LARGE(413, "The body (after decompression) is larger than the configured limit (default 10 MiB)."),
  TOO_MANY_MUTATIONS(413, "More than 5000 mutations in one push."),
  UNSUPPORTED_MEDIA_TYPE(415, "The body is not application/json, or the Content-Encoding is not identity, gzip or zstd."),
  INTERNAL(500, "An unexpected server fault; nothing was changed. Retry with the same mutations."),
  UNAVAILABLE(503, "The store is not reachable; nothing was changed. Retry later."),

  // Per-mutation outcomes inside a 200 push response.
  UNKNOWN_COLLECTION(200, "The mutation names a collection the server does not define."),
  VALIDATION_FAILED(200, "The record (after applying an update's fields) does not satisfy the collection's JSON Schema; `field` points at the offending field."),
  RECORD_NOT_FOUND(200, "An update or delete names a record the server does not have."),
  RECORD_EXISTS(200, "A create names a record id that already exists (or existed and was deleted)."),
  RECORD_DELETED(200, "An update or delete names a record that has been deleted at the version the client saw."),
  INVALID_BASE_VERSION(200, "baseVersion is newer than any version the server issued for the record."),
  VERSION_CONFLICT(200, "baseVersion is older than the server's version and the collection's policy could not settle it: the change is parked in the supervisor inbox (conflictId) and not applied; the current server record is returned."),
  MUTATION_ID_REUSED(200, "This mutationId was already used for a mutation with different content; this one was not applied."),
  CLOCK_SKEW(200, "The mutation's hlc is further ahead of the server's clock than the configured skew (default 24 h). Correct the device clock, reset the stored clock reading, and send the change again as a new mutation (new mutationId)."),
  INVALID_TRANSITION(200, "The change moves a monotonic field (e.g. an appointment's status) to a value it may not reach from the value the client saw."),
  UNIQUE_VIOLATION(200, "A unique rule of the collection is breached (e.g. a second open subsidy claim for the same farmer, crop and season); the message says which."),
  CAPACITY_EXCEEDED(200, "A capacity rule of the collection is breached (e.g. the appointment slot is full); the message is written for the clerk."),
  RULE_VIOLATION(200, "A rule written in Java for this deployment refused the change; the message says why."),
  BAD_SIGNATURE(200, "The mutation's signature does not verify with the sending device's key over the tenant, the device and the mutation's canonical content (altered, replayed into another tenant or from another device, or forged). Nothing was recorded, not even the mutationId."),
  OUT_OF_SCOPE(200, "The record's org unit (before or after the change) is outside the user's assigned org units; the change is rejected and listed in the inbox.");

  private final int httpStatus;
  private final String description;

  ErrorCode(int httpStatus, String description) {
    this.httpStatus = httpStatus;
    this.description = description;
  }

  /** HTTP status of a whole-request error with this code; 200 for per-mutation codes. */
  public int httpStatus() {
    return httpStatus;
  }

  /** What the code means and what a client should do, as written in docs/protocol.md. */
  public String description() {
    return description;
  }

  /** True when the code only appears inside a push result, never as a whole-request error. */
  public boolean perMutation() {
    return httpStatus == 200;
  }
}
