package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * Answer to {@code GET /v1/admin/stats}: how a tenant's devices have been syncing since a moment
 * ({@code stats.schema.json}).
 *
 * @param syncSuccessRate applied and merged mutations over every decided one; null when none was
 *     decided (and then absent on the wire)
 * @param rejectionReasons rejected mutations counted by error code
 * @param pendingHolds mutations held now behind a gap in their device's deviceSeq
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Stats(
    String tenantId,
    Instant since,
    Instant serverTime,
    Counts totals,
    Double syncSuccessRate,
    Map<String, Long> rejectionReasons,
    long pendingHolds,
    long openConflicts,
    long openInboxItems,
    List<DeviceStats> devices) {

  public Stats {
    rejectionReasons = Map.copyOf(rejectionReasons);
    devices = List.copyOf(devices);
  }

  /**
   * First decisions of mutations, by status; inbox resolutions apart; and the bytes of request
   * bodies as received ({@code bytesIn}) and response bodies as sent ({@code bytesOut}), counted
   * per day (UTC) from the day of {@code since}.
   */
  public record Counts(long mutations, long applied, long merged, long rejected, long conflict, long resolutions, long bytesIn,
      long bytesOut) {
    public static final Counts ZERO = new Counts(0, 0, 0, 0, 0, 0, 0, 0);

    public Counts plus(Counts o) {
      return new Counts(mutations + o.mutations, applied + o.applied, merged + o.merged, rejected + o.rejected,
          conflict + o.conflict, resolutions + o.resolutions, bytesIn + o.bytesIn, bytesOut + o.bytesOut);
    }
  }

  /** One device or API client; {@code userId}, {@code lastPushAt} and {@code lastPullAt} are null (absent) when unknown. */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record DeviceStats(
      UUID deviceId,
      String kind,
      String name,
      String userId,
      boolean revoked,
      Instant lastPushAt,
      Instant lastPullAt,
      Counts counts,
      long pendingHolds,
      long openConflicts,
      long openInboxItems) {}
}
