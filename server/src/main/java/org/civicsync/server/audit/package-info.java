/**
 * The tamper-evident audit trail. Every write transaction of a tenant goes through {@link
 * org.civicsync.server.audit.AuditedStore}, which appends one hash-chained entry recording what
 * the transaction did (digests of the log entries and outcomes it wrote, inbox items it opened or
 * resolved, admin actions) and sets each projection row's scope key. {@link
 * org.civicsync.server.audit.AuditVerifier} walks the chain against the tables and names the first
 * row that does not hold; {@link org.civicsync.server.audit.RecordTrails} tells a record's history.
 */
package org.civicsync.server.audit;
