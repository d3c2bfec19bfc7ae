/**
 * Server-authoritative rules: the declarative {@code unique} and {@code capacity} rules of each
 * collection, and {@link org.civicsync.server.rules.RecordRule}, the extension point for rules a
 * deployment writes in Java. Both run inside the push's write transaction.
 */
package org.civicsync.server.rules;
