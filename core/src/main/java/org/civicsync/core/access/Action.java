package org.civicsync.core.access;

import java.util.Locale;
import java.util.Optional;

/** What a role may be granted on a collection. */
public enum Action {
  READ, CREATE, UPDATE, DELETE, RESOLVE;

  public String wire() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static Optional<Action> parse(String wire) {
    for (Action a : values()) {
      if (a.wire().equals(wire)) {
        return Optional.of(a);
      }
    }
    return Optional.empty();
  }
}
