package org.civicsync.client;

import java.time.Instant;
import java.util.Optional;

/**
 * Where the device stands.
 *
 * @param pending changes not yet confirmed by the server (entries pending, sending or held, plus
 *     edits waiting for an earlier change of the same record)
 * @param rejected changes the server refused (kept so the app can show them)
 * @param conflicts changes parked for a person to resolve
 * @param lastSyncAt when a sync last completed (everything pushed and pulled)
 * @param online whether the last attempt reached the server
 * @param wireBytes bytes sent and received so far by this client instance
 */
public record ClientStatus(long pending, long rejected, long conflicts, Optional<Instant> lastSyncAt, boolean online, long wireBytes,
    boolean live) {}
