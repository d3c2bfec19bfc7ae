package org.civicsync.core.ids;

import java.util.Random;
import java.util.UUID;

/**
 * UUIDs of version 7 (RFC 9562, section 5.7): 48 bits of Unix time in milliseconds, then 74
 * random bits. Ids minted later sort later (by their text, or by their bytes as PostgreSQL and
 * SQLite compare them), to the millisecond; within one millisecond their order is random.
 *
 * <p>Why the devices mint these rather than random (version 4) ids: every record and mutation id
 * is a key of a B-tree index on the server (the projection's primary key, the event log's
 * idempotency index). Random keys put each insert on a random page of an index that soon no longer
 * fits in memory, and after every checkpoint each such page costs PostgreSQL a full-page image in
 * its log; time-ordered keys land on the few pages at the index's end. Measured on the ingest
 * benchmark: PostgreSQL's CPU per mutation 133–148 µs with random ids, 105–128 µs with these, and
 * it grows less as the tables do (docs/benchmarks.md, item 20).
 *
 * <p>The price: an id tells when it was minted, to the millisecond, by the minting device's clock.
 * The record's own clock fields tell as much to anyone who can read it. A device whose clock is
 * wrong still mints unique ids (74 random bits per millisecond); they only sort out of place.
 */
public final class Uuid7 {
  private static final long MAX_MILLIS = (1L << 48) - 1;

  private Uuid7() {}

  /**
   * A new id for the instant {@code unixMillis}, its random bits from {@code random} (a {@link
   * java.security.SecureRandom} outside tests: ids must not be guessable from one another).
   *
   * @throws IllegalArgumentException if {@code unixMillis} is negative or beyond 48 bits (the
   *     year 10889)
   */
  public static UUID next(long unixMillis, Random random) {
    if (unixMillis < 0 || unixMillis > MAX_MILLIS) {
      throw new IllegalArgumentException("a version 7 UUID holds Unix milliseconds from 0 to " + MAX_MILLIS + ", not " + unixMillis);
    }
    long randA = random.nextInt() & 0x0fffL;
    long randB = random.nextLong() & 0x3fffffffffffffffL;
    return new UUID(unixMillis << 16 | 0x7000L | randA, 0x8000000000000000L | randB);
  }

  /**
   * The Unix milliseconds a version 7 id was minted at.
   *
   * @throws IllegalArgumentException for an id of another version
   */
  public static long millis(UUID id) {
    if (id.version() != 7) {
      throw new IllegalArgumentException("not a version 7 UUID: " + id);
    }
    return id.getMostSignificantBits() >>> 16;
  }
}
