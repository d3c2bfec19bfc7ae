/**
 * RFC 8785 JSON Canonicalization Scheme (JCS) over Jackson trees, and the SHA-256 digests built on
 * it: the idempotency check compares mutations by these digests, and device signatures (a later
 * protocol version) sign the same bytes.
 */
package org.civicsync.core.canonical;
