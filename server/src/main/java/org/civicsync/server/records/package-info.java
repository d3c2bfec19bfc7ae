/**
 * The records API for online back-office systems (a hospital information system, a reporting
 * job): read records by id or by field, and write them with optimistic versions ({@code ETag} /
 * {@code If-Match}) and {@code Idempotency-Key}, through the same pipeline as pushes.
 */
package org.civicsync.server.records;
