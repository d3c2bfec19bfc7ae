/**
 * The {@link org.civicsync.server.store.ServerStore} on PostgreSQL, for deployments that outgrow
 * the embedded SQLite store or need a shared, replicated database.
 *
 * <p>{@link org.civicsync.server.store.postgres.PostgresServerStore#open} builds a HikariCP pool
 * from a {@link org.civicsync.server.store.postgres.PostgresConfig} and brings the configured
 * schema up to date with the Flyway migrations in {@code db/migration/postgres}. Record data is
 * JSONB; log entries keep the mutation and its result as the exact JSON text first stored, so a
 * replay answers byte for byte as the first time.
 *
 * <p>Gap-free change feed: every write transaction of a tenant first locks that tenant's row in
 * {@code tenant_heads} ({@code SELECT ... FOR UPDATE}) and holds it until commit. Writers of one
 * tenant therefore commit one after another, each numbering its changes after the previous
 * commit's, so sequence numbers appear in commit order and a reader can never pass a number that a
 * slower transaction fills in later. A push is one such transaction of a handful of statements
 * (array parameters and {@code unnest}, never one round trip per mutation); different tenants
 * write in parallel.
 */
package org.civicsync.server.store.postgres;
