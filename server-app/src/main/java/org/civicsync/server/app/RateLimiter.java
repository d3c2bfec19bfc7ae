package org.civicsync.server.app;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Token buckets per caller: each holds up to a minute's allowance and refills continuously. A
 * bucket is keyed by the digest of the bearer token, or by the client address for requests
 * without one (enrollment, token renewal), which get a tenth of the allowance. Per instance: a
 * fleet behind a load balancer multiplies the allowance by its size, which the operations guide
 * says.
 */
final class RateLimiter {
  private final double perSecond;
  private final double capacity;
  private final ConcurrentHashMap<String, Bucket> buckets = new ConcurrentHashMap<>();
  private final java.util.function.LongSupplier nanos;

  RateLimiter(int perMinute, java.util.function.LongSupplier nanos) {
    this.perSecond = perMinute / 60.0;
    this.capacity = Math.max(1, perMinute);
    this.nanos = nanos;
  }

  private static final class Bucket {
    double tokens;
    long at;
  }

  /**
   * Forgets buckets that have refilled completely (their callers have been quiet for a minute):
   * forgetting them changes nothing. If a flood keeps every bucket busy, the oldest half goes.
   */
  private void evictIdle() {
    long now = nanos.getAsLong();
    buckets.entrySet().removeIf(e -> now - e.getValue().at > 60_000_000_000L);
    if (buckets.size() > 100_000) {
      java.util.List<java.util.Map.Entry<String, Bucket>> all = new java.util.ArrayList<>(buckets.entrySet());
      all.sort(java.util.Comparator.comparingLong(e -> e.getValue().at));
      all.subList(0, all.size() / 2).forEach(e -> buckets.remove(e.getKey(), e.getValue()));
    }
  }

  /** Takes one request's worth; returns 0 when allowed, else the seconds to wait. */
  long acquire(String key, double share) {
    if (buckets.size() > 100_000) {
      evictIdle(); // a flood of distinct keys must not grow memory without bound
    }
    Bucket b = buckets.computeIfAbsent(key, k -> {
      Bucket n = new Bucket();
      n.tokens = capacity * share;
      n.at = nanos.getAsLong();
      return n;
    });
    synchronized (b) {
      long now = nanos.getAsLong();
      b.tokens = Math.min(capacity * share, b.tokens + (now - b.at) / 1e9 * perSecond * share);
      b.at = now;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return (long) Math.ceil((1 - b.tokens) / (perSecond * share));
    }
  }
}
