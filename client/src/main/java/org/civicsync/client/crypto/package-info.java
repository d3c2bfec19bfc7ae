/**
 * Encryption at rest of what a device stores: AES-256-GCM under a key the app supplies (from the
 * Android Keystore, say) or derives from a passphrase with PBKDF2-HMAC-SHA256.
 */
package org.civicsync.client.crypto;
