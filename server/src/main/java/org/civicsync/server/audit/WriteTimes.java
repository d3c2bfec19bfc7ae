package org.civicsync.server.audit;

/**
 * Told, after each committed write transaction, how long it waited for its tenant's write lock
 * (a connection, the transaction's start and the lock itself) and how long it then held it (its
 * work and the commit). A tenant's writes run one at a time (ServerStore#write): when the wait
 * grows with the load while the hold does not, the lock is what limits the tenant's writes.
 */
@FunctionalInterface
public interface WriteTimes {
  /** Tells nobody. */
  WriteTimes NONE = (waited, held) -> {};

  /** One committed write: nanoseconds waited for the lock and held it. Must return quickly. */
  void written(long waitedNanos, long heldNanos);
}
