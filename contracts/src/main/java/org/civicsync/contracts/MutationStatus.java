package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonValue;

/** The outcome of one mutation. */
public enum MutationStatus {
  /** Committed; the result carries the record's new version. */
  APPLIED,
  /**
   * Applied after the collection's policy merged it with changes the client had not seen; the
   * result carries the merged record, which the client should take as its local copy.
   */
  MERGED,
  /**
   * Not applied yet: an earlier mutation of the same device (a lower deviceSeq) has not arrived.
   * Kept durably and applied in order when it does; the final result then comes through the
   * outcomes feed and replays.
   */
  HELD,
  /** Not applied, with a catalogue error; never retried by the server. */
  REJECTED,
  /**
   * Not applied: the change is stale and its policy parked it for a person to resolve; the result
   * carries the inbox item's id and the current server record.
   */
  CONFLICT;

  @JsonValue
  public String wire() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
