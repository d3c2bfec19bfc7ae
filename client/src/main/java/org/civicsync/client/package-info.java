/**
 * The CivicSync client SDK: {@link org.civicsync.client.CivicSyncClient} makes every write succeed
 * locally at once (record and signed outbox entry in one local transaction) and carries it to the
 * server exactly once, whatever the network does; pulls apply the server's changes under the
 * device's pending ones (rebase). Java 17, Android API 26; no JDBC, no {@code java.net.http}.
 */
package org.civicsync.client;
