/**
 * Where the server's settings come from: command-line flags, then environment variables, then a
 * configuration file, then the defaults; and {@code civicsync config check}, which says what the
 * result is, where each value came from, and what is wrong with it.
 */
package org.civicsync.server.app.config;
