package org.civicsync.server.store;

/** The last link of a tenant's audit chain: its seq and hash (0 and the genesis hash when empty). */
public record AuditHead(long seq, String hash) {
  /** The {@code prevHash} of a tenant's first audit entry. */
  public static final String GENESIS_HASH = "0".repeat(64);

  public static final AuditHead EMPTY = new AuditHead(0, GENESIS_HASH);
}
