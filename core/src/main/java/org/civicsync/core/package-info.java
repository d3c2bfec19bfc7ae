/**
 * Pure sync rules shared by the server and every client: no I/O, no threads, Android-safe.
 * Subpackages by concern: {@code json} (the one configured mapper), {@code canonical} (RFC 8785
 * canonical JSON and mutation digests), {@code validation} (checking messages against the contract
 * schemas), {@code collections} (collection definitions and their record schemas), {@code records}
 * (what create, update and delete do to a record).
 */
package org.civicsync.core;
