/**
 * Compaction: keeps tombstones and superseded log detail from growing for ever. Past a horizon
 * (90 days by default) tombstones leave the projection for a graveyard (so their ids are still
 * never reused), records' moves out of scopes are dropped, and log entries that no longer produce
 * their record's current state lose their detail but keep what answers a retry and what the audit
 * chain checks. Devices whose cursor is older than what went get {@code RESYNC_REQUIRED}.
 */
package org.civicsync.server.compaction;
