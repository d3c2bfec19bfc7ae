/**
 * Pull: the gap-free change feed. A {@link org.civicsync.server.pull.Cursor} is a position in a
 * tenant's commit order, opaque on the wire and bound to the tenant and collection filter.
 * {@link org.civicsync.server.pull.FeedPage} is a page in its wire form, and {@code ReadAhead}
 * reads the next page of a download while the current one is on its way.
 */
package org.civicsync.server.pull;
