package org.civicsync.client.sync;

import java.time.Duration;
import java.util.Random;

/**
 * Exponential backoff with full jitter: the n-th wait is uniform in {@code [0, min(cap, base ·
 * 2^n)]}, so a district's devices coming back online together do not retry in step. Reset after a
 * success.
 */
public final class Backoff {
  private final Duration base;
  private final Duration cap;
  private final Random random;
  private int attempts;

  public Backoff(Duration base, Duration cap, Random random) {
    this.base = base;
    this.cap = cap;
    this.random = random;
  }

  /** The next wait; each call doubles the ceiling up to the cap. */
  public Duration next() {
    long ceiling = base.toMillis() << Math.min(attempts, 30);
    if (ceiling <= 0 || ceiling > cap.toMillis()) {
      ceiling = cap.toMillis();
    }
    attempts++;
    return Duration.ofMillis((long) (random.nextDouble() * (ceiling + 1)));
  }

  public void reset() {
    attempts = 0;
  }

  /** Failures since the last reset. */
  public int attempts() {
    return attempts;
  }
}
