package org.civicsync.server.store;

import java.util.UUID;

/** A record's identity inside one tenant. */
public record RecordKey(String collection, UUID recordId) {}
