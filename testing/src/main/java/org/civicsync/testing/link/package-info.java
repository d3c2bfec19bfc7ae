/**
 * A fault-injecting network link for tests and benchmarks: {@link
 * org.civicsync.testing.link.FaultyLink}, an in-process TCP proxy on loopback that puts a slow,
 * lossy, misbehaving network between an HTTP client and a server, as described by a {@link
 * org.civicsync.testing.link.LinkProfile} (bandwidth and latency per direction, loss emulated as
 * connection resets, and HTTP-aware faults: lost acknowledgements, duplicated requests, resets in
 * the middle of a request body, delayed responses, reordered connections).
 *
 * <p>Every random decision is drawn from generators derived from one seed, so a run that failed
 * can be replayed with the same faults; {@link org.civicsync.testing.link.FaultyLink#faults()}
 * tells which faults were injected where.
 */
package org.civicsync.testing.link;
