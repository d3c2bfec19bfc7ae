package org.civicsync.core.conflicts;

/** How a field changed on both sides since the base is settled. */
public enum PolicyName {
  /** The server's value stands; the client's change to the field is dropped and reported. */
  SERVER_WINS("serverWins"),
  /** The client's value is applied. */
  CLIENT_WINS("clientWins"),
  /** The later writer by hybrid logical clock wins; never a device's raw wall clock. */
  LAST_WRITER_WINS("lastWriterWins"),
  /** Three-way: one-sided changes apply, a field changed on both sides differently is a conflict. */
  MERGE("merge"),
  /** Any stale change to the field parks the whole mutation for review. */
  MANUAL("manual");

  private final String wire;

  PolicyName(String wire) {
    this.wire = wire;
  }

  public String wire() {
    return wire;
  }

  public static PolicyName fromWire(String s) {
    for (PolicyName p : values()) {
      if (p.wire.equals(s)) {
        return p;
      }
    }
    throw new IllegalArgumentException("unknown policy '" + s + "'");
  }
}
