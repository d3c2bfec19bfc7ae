package org.civicsync.server.store;

import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * The raw counts behind the statistics API, as one store query gathers them; the {@code stats}
 * feature turns them into {@link org.civicsync.contracts.Stats}.
 *
 * @param log event-log entries received since the asked moment, by device, status and error code
 * @param held mutations held now, by device
 * @param openInbox open inbox items, by device (empty for items no device sent) and kind
 * @param traffic bytes by device on the days from the asked moment's day (UTC) on
 */
public record TenantCounts(List<LogCount> log, List<HeldCount> held, List<InboxCount> openInbox, List<TrafficCount> traffic) {
  public TenantCounts {
    log = List.copyOf(log);
    held = List.copyOf(held);
    openInbox = List.copyOf(openInbox);
    traffic = List.copyOf(traffic);
  }

  public record TrafficCount(UUID deviceId, long bytesIn, long bytesOut) {}

  /**
   * @param status the logged result's status ({@code applied}, {@code merged}, {@code rejected},
   *     {@code conflict})
   * @param errorCode the result's {@code error.code}, for rejections and conflicts
   * @param resolution whether the entries are inbox resolutions (logged with a note) rather than
   *     mutations the device sent
   */
  public record LogCount(UUID deviceId, String status, Optional<String> errorCode, boolean resolution, long count) {}

  public record HeldCount(UUID deviceId, long count) {}

  public record InboxCount(Optional<UUID> deviceId, String kind, long count) {}
}
