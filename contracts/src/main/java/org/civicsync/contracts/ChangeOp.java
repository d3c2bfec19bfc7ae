package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonValue;

/** What a change in the feed says about its record. */
public enum ChangeOp {
  /** The record exists; the change carries its whole data at that version. */
  UPSERT,
  /** The record was deleted (a tombstone, without data). */
  DELETE,
  /** The record left the caller's scope: drop the local copy (the record still exists elsewhere). */
  REMOVE;

  @JsonValue
  public String wire() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
