/**
 * The server's metrics in Prometheus form ({@code GET /metrics}, Micrometer): what operators
 * watch — pushes and mutations by outcome, batch sizes, latencies, bytes, open streams, the
 * outbox, held mutations and open inbox items — without any personal data.
 */
package org.civicsync.server.app.metrics;
