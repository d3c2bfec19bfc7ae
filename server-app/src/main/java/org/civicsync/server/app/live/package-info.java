/**
 * Devices' live streams ({@code GET /v1/sync/stream}) as Server-Sent Events, written without a
 * thread per stream: a commit's notice is written to every concerned connection by the threads
 * that dispatch it, with non-blocking writes, so a thousand streams cost one pass over their
 * sockets and a device on a slow link holds back no one but itself.
 */
package org.civicsync.server.app.live;
