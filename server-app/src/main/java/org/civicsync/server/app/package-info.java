/**
 * The runnable server: configuration, the command line ({@link org.civicsync.server.app.Main}),
 * the HTTP API on Javalin ({@link org.civicsync.server.app.HttpApi}) and the wiring of store,
 * services and HTTP ({@link org.civicsync.server.app.CivicSyncServer}). The only module that knows
 * every other one.
 */
package org.civicsync.server.app;
