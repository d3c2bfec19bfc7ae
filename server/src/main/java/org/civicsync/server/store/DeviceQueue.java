package org.civicsync.server.store;

import java.util.List;

/**
 * Where a device's ordered stream of mutations stands.
 *
 * @param progress the highest deviceSeq up to which every mutation of the device has been
 *     processed (0 before the first)
 * @param held mutations waiting for a gap to fill, by ascending deviceSeq
 */
public record DeviceQueue(long progress, List<HeldMutation> held) {
  public DeviceQueue {
    held = List.copyOf(held);
  }
}
