package org.civicsync.server.store;

import java.util.HashSet;
import java.util.Optional;
import java.util.Set;

/**
 * {@link ServerStore#tryLead} for a store that one process owns (SQLite, in memory): a role is
 * held by one caller in the process at a time.
 */
public final class LocalRoles {
  private final Set<String> held = new HashSet<>();

  public Optional<ServerStore.Leadership> tryLead(String role) {
    synchronized (held) {
      if (!held.add(role)) {
        return Optional.empty();
      }
    }
    return Optional.of(new ServerStore.Leadership() {
      private boolean holding = true;

      @Override
      public boolean held() {
        synchronized (held) {
          return holding;
        }
      }

      @Override
      public void close() {
        synchronized (held) {
          if (holding) {
            held.remove(role);
            holding = false;
          }
        }
      }
    });
  }
}
