/**
 * Pull: the gap-free change feed. A {@link org.civicsync.server.pull.Cursor} is a position in a
 * tenant's commit order, opaque on the wire and bound to the tenant and collection filter.
 */
package org.civicsync.server.pull;
