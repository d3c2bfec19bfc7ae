package org.civicsync.client;

import java.util.UUID;

/** Something the user may need to know about a change, raised when a sync learns it. */
public sealed interface SyncEvent {
  String collection();

  UUID recordId();

  /** The server refused a change; the record was rolled back to the server's state. */
  record Rejected(String collection, UUID recordId, UUID mutationId, String code, String message) implements SyncEvent {}

  /** The server parked a change for a supervisor; the record shows the server's state meanwhile. */
  record Conflict(String collection, UUID recordId, UUID mutationId) implements SyncEvent {}

  /** The server merged a stale change with newer ones; the record shows the merged state. */
  record Merged(String collection, UUID recordId, UUID mutationId) implements SyncEvent {}

  /** The record left the device's scope and was removed locally. */
  record Removed(String collection, UUID recordId) implements SyncEvent {}
}
