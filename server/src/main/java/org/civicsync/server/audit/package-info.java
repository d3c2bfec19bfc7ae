/**
 * The tamper-evident audit trail. Every write transaction of a tenant goes through {@link
 * org.civicsync.server.audit.AuditedStore}, which appends one hash-chained entry recording what
 * the transaction did (digests of the log entries and outcomes it wrote, inbox items it opened or
 * resolved, admin actions) and sets each projection row's scope key. {@link
 * org.civicsync.server.audit.AuditVerifier} walks the chain against the tables and names the first
 * row that does not hold; {@link org.civicsync.server.audit.RecordTrails} tells a record's history.
 * Being every write's way in, {@code AuditedStore} also times each one's wait for and hold of its
 * tenant's lock ({@link org.civicsync.server.audit.WriteTimes}, for the server's metrics).
 */
package org.civicsync.server.audit;
