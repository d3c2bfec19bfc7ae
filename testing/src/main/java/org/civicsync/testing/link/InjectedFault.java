package org.civicsync.testing.link;

import java.util.Comparator;
import java.util.Objects;

/**
 * One fault a {@link FaultyLink} injected.
 *
 * @param connection the connection's ordinal: 0 for the first connection the link accepted, 1 for
 *     the next, and so on
 * @param kind what was done
 * @param direction the stream the fault acted on ({@link Direction#UP} for faults on requests,
 *     {@link Direction#DOWN} for faults on responses)
 * @param index for {@link FaultKind#LOSS} the number of the lost packet in that direction of the
 *     connection (from 0); for the HTTP faults the number of the request on the connection (from 0)
 */
public record InjectedFault(long connection, FaultKind kind, Direction direction, long index)
    implements Comparable<InjectedFault> {

  private static final Comparator<InjectedFault> ORDER =
      Comparator.comparingLong(InjectedFault::connection)
          .thenComparing(InjectedFault::direction)
          .thenComparingLong(InjectedFault::index)
          .thenComparing(InjectedFault::kind);

  public InjectedFault {
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(direction, "direction");
  }

  /** Orders by connection, direction, index, then kind: an order that does not depend on timing. */
  @Override
  public int compareTo(InjectedFault other) {
    return ORDER.compare(this, other);
  }
}
