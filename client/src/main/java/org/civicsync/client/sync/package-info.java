/**
 * When to sync: {@link org.civicsync.client.sync.SyncEngine}, an I/O-free state machine that turns
 * events (online, timer, local change, push done, failure…) into instructions (push, pull, renew
 * the token, wait), with {@link org.civicsync.client.sync.Backoff} (exponential, full jitter,
 * capped) drawing from an injected {@link java.util.Random}. The client runs the instructions.
 */
package org.civicsync.client.sync;
