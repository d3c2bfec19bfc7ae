/**
 * Test support shared by every module: {@link org.civicsync.testing.ServerStoreContract}, the one
 * abstract suite each {@code ServerStore} subclasses, {@link org.civicsync.testing.InMemoryServerStore},
 * a fake for tests of code above the store, and {@link org.civicsync.testing.Fixtures} for realistic
 * mutations.
 */
package org.civicsync.testing;
