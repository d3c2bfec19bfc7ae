/**
 * The CivicSync wire contract, protocol v1.
 *
 * <p>The JSON Schemas under {@code org/civicsync/contracts/schemas} are the source of truth; the
 * records here mirror them for Java code, and the golden files under
 * {@code org/civicsync/contracts/examples} show each message and are checked against both. Every
 * error code the server can return is in {@link org.civicsync.contracts.ErrorCode}. The OpenAPI
 * document of the HTTP API is the resource {@code org/civicsync/contracts/openapi.yaml}.
 *
 * <p>Android-safe: compiled for Java 17, depends only on Jackson. Optional fields of a message are
 * {@code null} in these records exactly when they are absent on the wire.
 */
package org.civicsync.contracts;
