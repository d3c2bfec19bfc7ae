/**
 * Push: validating a batch of mutations against the contract, then deciding and committing each
 * one exactly once in one transaction, with idempotent replies from the event log.
 */
package org.civicsync.server.push;
