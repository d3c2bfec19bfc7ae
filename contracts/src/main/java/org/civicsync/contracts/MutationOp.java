package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonValue;

/** What a mutation does to its record. */
public enum MutationOp {
  CREATE,
  UPDATE,
  DELETE;

  @JsonValue
  public String wire() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
