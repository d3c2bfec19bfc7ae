package org.civicsync.client.store;

import java.util.function.Function;

/**
 * Durable, transactional storage of one device. Implementations are thread-safe and serialise
 * transactions; a transaction whose work throws leaves nothing behind, and one that returned is
 * durable (it survives the process being killed right after).
 */
public interface LocalStore extends AutoCloseable {
  /** Runs {@code work} in one transaction and commits it when {@code work} returns. */
  <T> T transaction(Function<LocalTx, T> work);

  @Override
  void close();
}
