/**
 * Sync statistics for people who look after the field: per device, when it last synced and how
 * its changes were decided, and what waits (held mutations, open conflicts) — the figures that
 * deployments otherwise gather with ad-hoc SQL, served by {@code GET /v1/admin/stats}.
 */
package org.civicsync.server.stats;
