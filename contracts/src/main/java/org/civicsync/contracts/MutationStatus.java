package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonValue;

/** The outcome of one mutation. */
public enum MutationStatus {
  /** Committed; the result carries the record's new version. */
  APPLIED,
  /** Not applied, with a catalogue error; never retried by the server. */
  REJECTED,
  /** Not applied because baseVersion is stale; the result carries the current server record. */
  CONFLICT;

  @JsonValue
  public String wire() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
