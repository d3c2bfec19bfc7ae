package org.civicsync.server.store;

import java.util.Optional;

/** A {@link ScopeMove} with the record's scope key now (empty when the record has none). */
public record MovedRecord(ScopeMove move, Optional<String> currentKey) {}
