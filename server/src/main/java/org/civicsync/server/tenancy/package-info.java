/**
 * Tenants, enrollment codes, device enrollment and bearer-token authentication. Secrets (tokens,
 * codes) are random, shown once, and stored only as SHA-256 hashes.
 */
package org.civicsync.server.tenancy;
