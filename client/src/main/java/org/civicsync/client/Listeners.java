package org.civicsync.client;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Optional;
import java.util.UUID;

/** Callbacks an app registers; they run on the thread that made the change, after it committed. */
public final class Listeners {
  private Listeners() {}

  /** A record changed locally (a write, or a sync); {@code data} is empty when it is gone. */
  @FunctionalInterface
  public interface RecordListener {
    void changed(String collection, UUID recordId, Optional<ObjectNode> data);
  }

  /** Sync news: events about changes, and status after each step. */
  public interface SyncListener {
    default void event(SyncEvent event) {}

    default void status(ClientStatus status) {}

    /**
     * After each push and each pull page of a sync: how many mutations were pushed and changes
     * pulled so far in this sync, and how many outbox entries are still to send.
     */
    default void progress(int pushed, int pulled, long toSend) {}

    /** Background sync stopped for good (e.g. the device was revoked); the outbox is kept. */
    default void stopped(String reason) {}
  }
}
