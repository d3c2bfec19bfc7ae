/** Rebuilding the projection (the records read model) from the append-only event log. */
package org.civicsync.server.projection;
