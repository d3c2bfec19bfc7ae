/**
 * The benchmark suite behind {@code bench/run}: the server as a child process, loads driven over
 * real HTTP, and every figure a ratio of two things measured side by side in the same run on the
 * same data (the database's own limit, the wire's, a slow link's, a peer's), so that a noisy
 * shared machine changes both sides alike. {@link org.civicsync.bench.BenchMain} runs it and
 * writes {@code bench/results/}.
 */
package org.civicsync.bench;
