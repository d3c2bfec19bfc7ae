/**
 * The server's logs: one JSON object per line (or plain text for a person at a terminal), with the
 * request id of the HTTP request that wrote them, and an access line per request that names the
 * route template, never the concrete path or query (no tokens, ids or personal data).
 */
package org.civicsync.server.app.logging;
