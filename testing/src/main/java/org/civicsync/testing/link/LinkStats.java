package org.civicsync.testing.link;

import java.util.Collections;
import java.util.EnumMap;
import java.util.Map;

/**
 * A snapshot of a {@link FaultyLink}'s counters.
 *
 * @param connections client connections accepted since the link started
 * @param activeConnections client connections still open
 * @param bytesUp bytes delivered to the server (injected duplicates not included)
 * @param bytesDown bytes delivered to the client
 * @param packetsUp packets (of {@link LinkProfile#packetBytes()} bytes or fewer) that entered the
 *     link from clients; each is one loss draw
 * @param packetsDown packets that entered the link from the server
 * @param faults how many faults of each kind were injected (every kind present, 0 when none)
 */
public record LinkStats(
    long connections,
    int activeConnections,
    long bytesUp,
    long bytesDown,
    long packetsUp,
    long packetsDown,
    Map<FaultKind, Long> faults) {

  public LinkStats {
    EnumMap<FaultKind, Long> all = new EnumMap<>(FaultKind.class);
    for (FaultKind kind : FaultKind.values()) {
      all.put(kind, faults.getOrDefault(kind, 0L));
    }
    faults = Collections.unmodifiableMap(all);
  }

  /** How many faults of this kind were injected. */
  public long faults(FaultKind kind) {
    return faults.get(kind);
  }

  /** How many faults were injected, of every kind. */
  public long totalFaults() {
    return faults.values().stream().mapToLong(Long::longValue).sum();
  }
}
