/** A {@link org.civicsync.client.store.LocalStore} on one SQLite file, optionally encrypted at rest. */
package org.civicsync.client.store.sqlite;
