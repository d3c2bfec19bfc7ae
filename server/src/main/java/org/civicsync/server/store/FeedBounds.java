package org.civicsync.server.store;

/**
 * Where a tenant's change feed ends and from where it is whole.
 *
 * @param head the last assigned seq (0 for a new tenant)
 * @param watermark the compaction watermark: a cursor below it would miss deletions (0 when
 *     nothing was compacted)
 */
public record FeedBounds(long head, long watermark) {}
