/**
 * Where a device keeps its data: the {@link org.civicsync.client.store.LocalStore} SPI (records as
 * the server last confirmed them and as the user sees them, the outbox, and small settings),
 * transactional so a write and its outbox entry commit together or not at all. {@link
 * org.civicsync.client.store.InMemoryLocalStore} is the reference implementation for tests; the
 * SQLite store lives in {@code client-store-sqlite}, an Android store would use
 * {@code android.database.sqlite} behind the same SPI.
 */
package org.civicsync.client.store;
