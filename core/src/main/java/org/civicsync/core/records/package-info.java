/**
 * What a mutation does to a record: the version rules, update patches, defaults, and the decision
 * between applied, rejected and conflict. Pure functions; the server runs them inside its write
 * transaction, and projection rebuilds run them again over the event log.
 */
package org.civicsync.core.records;
