package org.civicsync.server.store;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The subscribers of one store's {@link ServerStore#onCommit}, for store implementations. */
public final class CommitListeners {
  private static final Logger LOG = LoggerFactory.getLogger(CommitListeners.class);
  private final List<Consumer<CommitNotice>> listeners = new CopyOnWriteArrayList<>();

  /** Adds a listener; closing the handle removes it. */
  public AutoCloseable add(Consumer<CommitNotice> listener) {
    listeners.add(listener);
    return () -> listeners.remove(listener);
  }

  /** Calls every listener; one that throws is logged and does not stop the others. */
  public void deliver(CommitNotice notice) {
    for (Consumer<CommitNotice> l : listeners) {
      try {
        l.accept(notice);
      } catch (RuntimeException e) {
        LOG.warn("a commit listener failed for tenant {}", notice.tenantId(), e);
      }
    }
  }
}
