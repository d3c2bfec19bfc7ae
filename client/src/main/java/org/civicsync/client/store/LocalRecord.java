package org.civicsync.client.store;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.UUID;

/**
 * One record on the device, in two layers: what the server last confirmed ({@code serverVersion},
 * {@code serverData}) and what the user sees ({@code data}): the server's state with the device's
 * unsynced changes on top. A pull replaces the first layer and re-applies the pending changes to
 * rebuild the second (rebase).
 *
 * @param serverVersion 0 while the server has never confirmed the record
 * @param serverData the confirmed data; {@code null} when unconfirmed or deleted on the server
 * @param data what the user sees; {@code null} when deleted locally (or on the server)
 * @param dirty the record has local changes the server has not confirmed yet
 * @param updatedAt when the local view last changed
 */
public record LocalRecord(String collection, UUID recordId, long serverVersion, ObjectNode serverData, ObjectNode data, boolean dirty,
    Instant updatedAt) {

  public boolean deleted() {
    return data == null;
  }
}
