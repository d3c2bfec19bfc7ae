package org.civicsync.server.store;

import java.time.Instant;

/**
 * One link of a tenant's hash-chained audit log: what one write transaction did, as canonical JSON
 * text (stored and returned byte for byte), chained to the entry before it.
 *
 * @param seq 1 for the tenant's first entry, then consecutive
 * @param content RFC 8785 canonical JSON; the store never re-encodes it
 * @param prevHash the previous entry's {@code hash} ({@link AuditHead#GENESIS_HASH} for the first)
 * @param hash hex SHA-256 over {@code prevHash} and {@code content} (see {@code server.audit})
 */
public record AuditEntry(long seq, Instant at, String content, String prevHash, String hash) {}
