/**
 * Signed offline envelopes: the exact bytes a device signs with its Ed25519 key for a mutation and
 * for a token challenge, and Ed25519 over raw 32-byte keys in base64url, as the protocol spells them.
 * A mutation signed offline stays verifiable after any delay; its signature binds it to one tenant,
 * one device and its exact canonical content.
 */
package org.civicsync.core.signing;
