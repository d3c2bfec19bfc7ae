/**
 * The CivicSync server's sync logic, independent of HTTP and of any database: push ({@code push}),
 * the change feed ({@code pull}), tenants, enrollment and tokens ({@code tenancy}), collection
 * definitions from files ({@code collections}), projection rebuilds ({@code projection}), all over
 * the {@link org.civicsync.server.store.ServerStore} SPI that each database module implements.
 */
package org.civicsync.server;
