/**
 * Declarative conflict policies: how a change made against an older version of a record is
 * settled, field by field, from three inputs — the record as the client saw it (the base), as the
 * server holds it now, and the client's change. Pure functions, shared by the server and by clients
 * that want to predict the server's answer.
 */
package org.civicsync.core.conflicts;
