/**
 * The storage SPI every database module implements ({@code server-store-sqlite},
 * {@code server-store-postgres}, the in-memory fake in {@code testing}), and the rows it moves. The
 * sync rules stay in the services; a store provides atomic, per-tenant-serialised write
 * transactions, batch reads and a gap-free ordered read of the projection. Every store must pass
 * {@code org.civicsync.testing.ServerStoreContract}.
 */
package org.civicsync.server.store;
