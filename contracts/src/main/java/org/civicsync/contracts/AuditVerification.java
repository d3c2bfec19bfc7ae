package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * The result of {@code GET /v1/admin/audit/verify}.
 *
 * @param firstBroken {@code null} when the chain holds
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record AuditVerification(String tenantId, boolean ok, long entries, long logEntries, long outcomes, long headSeq, String headHash,
    BrokenLink firstBroken) {

  /** The first link that does not hold: which table, which row (by seq), and why. */
  public record BrokenLink(String table, long seq, String reason) {}
}
