package org.civicsync.testing;

import org.civicsync.server.store.ServerStore;

class InMemoryServerStoreTest extends ServerStoreContract {
  @Override
  protected ServerStore openStore() {
    return new InMemoryServerStore();
  }

  @Override
  protected Tampering tampering() {
    return ((InMemoryServerStore) store).tampering();
  }
}
