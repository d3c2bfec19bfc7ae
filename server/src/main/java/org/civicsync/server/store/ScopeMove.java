package org.civicsync.server.store;

import java.util.UUID;

/**
 * A record's scope key changed from {@code fromKey} at {@code seq} (the seq of the change that
 * moved it): devices that could see {@code fromKey} learn from it that the record may have left
 * their scope.
 */
public record ScopeMove(long seq, String collection, UUID recordId, String fromKey) {}
