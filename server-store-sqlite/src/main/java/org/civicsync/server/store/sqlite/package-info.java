/**
 * The embedded default store: one SQLite database file in WAL mode with {@code synchronous=FULL},
 * so an acknowledged push survives a power cut. SQLite has one writer at a time; this store
 * serialises writers with a lock of its own (rather than letting them fail with SQLITE_BUSY), and
 * readers run concurrently on their WAL snapshots. A read that must see one state across several
 * queries ({@code pull}, {@code read}) runs them in one read transaction, whose first query fixes
 * its snapshot; it takes no lock a writer waits for.
 */
package org.civicsync.server.store.sqlite;
