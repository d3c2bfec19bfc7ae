/**
 * The outbox: every local change as a signed mutation waiting to reach the server, ordered by the
 * device's sequence number, with the state of each entry and the rules by which a push result
 * moves it on ({@link org.civicsync.client.outbox.EntryState}).
 */
package org.civicsync.client.outbox;
