/**
 * The {@link org.civicsync.server.store.ServerStore} on PostgreSQL, for deployments that outgrow
 * the embedded SQLite store or need a shared, replicated database.
 *
 * <p>{@link org.civicsync.server.store.postgres.PostgresServerStore#open} builds a HikariCP pool
 * from a {@link org.civicsync.server.store.postgres.PostgresConfig} and brings the configured
 * schema up to date with the Flyway migrations in {@code db/migration/postgres}. Record data is
 * JSONB; log entries keep the mutation and its result as the exact JSON text first stored, so a
 * replay answers byte for byte as the first time. Each log entry that changed a record also keeps
 * the record's state after it ({@code after_state}, text as well, with its version beside it in an
 * indexed column): the base a stale change is merged against, and what projections are rebuilt
 * from. A change the server originated (a supervisor's resolution) carries a note for the audit
 * trail ({@code note}, text like the rest of the entry, empty for a device's own mutation). Parked conflicts go to {@code inbox_items} (a resolution fills in its {@code resolved_at}
 * and {@code resolution}); a mutation's final result when it changed after the first answer goes
 * to {@code outcomes} (text, like the log's results), numbered from the tenant's change counter;
 * the claims of the collections' unique and
 * capacity rules (which record holds which combination of values) to {@code rule_claims}, written
 * in the same transaction as the records they follow from. Per-device order: {@code
 * device_progress} keeps how far each device's mutations have been processed (it only grows), and
 * {@code held_mutations} those that arrived after a gap in deviceSeq, until it fills; a push reads
 * both in one statement. {@code devices} holds field devices and the credentials of back-office
 * API clients alike, told apart by {@code kind}; the records API lists a collection's live records
 * filtered by top-level field values in one statement ({@code data ->> ?}, field names bound as
 * parameters), walking the records' primary key in record-id order.
 *
 * <p>Identity and scopes (issue 4): {@code users} (roles and org units as {@code text[]}) and
 * {@code org_units} are written in the tenant's write transactions; devices carry the user they
 * were enrolled for, their token's expiry and their revocation. {@code challenges} are taken with
 * one {@code DELETE ... RETURNING}, so a challenge is used at most once however many race for it.
 * Each projection row carries its {@code scope_key}, {@code scope_moves} the records that left a
 * key, and {@code scope_snapshots} the key sets cursors were issued for. A pull is one statement
 * (rows, moves with their record's key now, and the head, in one snapshot), key sets bound as
 * {@code text[]} parameters.
 *
 * <p>The audit chain: {@code audit_log} holds each entry's canonical JSON as text (never jsonb,
 * which would reorder keys), and its head sits on the tenant's {@code tenant_heads} row: the
 * statement that takes a write transaction's counter lock reads it, and an append inserts the
 * entry and moves the head in one statement. {@link
 * org.civicsync.server.store.postgres.PostgresServerStore#read} gives the verifier one REPEATABLE
 * READ, READ ONLY snapshot that blocks no writer.
 *
 * <p>Gap-free change feed: every write transaction of a tenant first locks that tenant's row in
 * {@code tenant_heads} ({@code SELECT ... FOR UPDATE}) and holds it until commit. Writers of one
 * tenant therefore commit one after another, each numbering its changes after the previous
 * commit's, so sequence numbers appear in commit order and a reader can never pass a number that a
 * slower transaction fills in later. A push is one such transaction of a handful of statements
 * (array parameters and {@code unnest}, not one round trip per mutation: the holders of every
 * claim a push's changes newly take under unique or capacity rules are read in one statement; the
 * one per-mutation read is the base version of a stale change); different tenants write in
 * parallel.
 *
 * <p>The same lock makes the rules server-authoritative without any lock of their own: a push
 * reads a claim's holders and writes its own claims while holding the tenant's row, so no other
 * push of the tenant can take the last slot between that check and the commit.
 */
package org.civicsync.server.store.postgres;
