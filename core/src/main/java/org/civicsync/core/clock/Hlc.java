package org.civicsync.core.clock;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A hybrid logical clock reading, written {@code <millis:15>-<counter:5>-<deviceId>}: wall-clock
 * milliseconds zero-padded to 15 digits, a counter zero-padded to 5 digits, and the id of the
 * device that made it. The fixed widths make string order equal clock order, so stores and
 * clients in any language compare readings as plain strings.
 */
public record Hlc(long millis, int counter, String deviceId) implements Comparable<Hlc> {
  private static final Pattern FORM = Pattern.compile("([0-9]{15})-([0-9]{5})-([A-Za-z0-9_-]{1,64})");
  /** The largest counter the 5-digit field holds. */
  public static final int MAX_COUNTER = 99_999;

  public Hlc {
    if (millis < 0 || millis > 999_999_999_999_999L || counter < 0 || counter > MAX_COUNTER
        || !FORM.matcher(String.format(Locale.ROOT, "%015d-%05d-%s", millis, counter, deviceId)).matches()) {
      throw new IllegalArgumentException("not an HLC reading: " + millis + "/" + counter + "/" + deviceId);
    }
  }

  /**
   * Parses the wire form.
   *
   * @throws IllegalArgumentException when {@code text} is not one
   */
  public static Hlc parse(String text) {
    Matcher m = FORM.matcher(text);
    if (!m.matches()) {
      throw new IllegalArgumentException("not an HLC reading: " + text);
    }
    return new Hlc(Long.parseLong(m.group(1)), Integer.parseInt(m.group(2)), m.group(3));
  }

  /** The wire form; string order of wire forms is the order of readings. */
  @Override
  public String toString() {
    return String.format(Locale.ROOT, "%015d-%05d-%s", millis, counter, deviceId);
  }

  @Override
  public int compareTo(Hlc o) {
    return toString().compareTo(o.toString());
  }

  /**
   * The reading for a local event: wall time when it has moved past the last reading, otherwise
   * the last reading's time with the counter advanced.
   */
  public static Hlc tick(Hlc last, long wallMillis, String deviceId) {
    if (last == null || wallMillis > last.millis) {
      return new Hlc(wallMillis, 0, deviceId);
    }
    return advance(last.millis, last.counter, deviceId);
  }

  /** The reading after receiving {@code remote}: never behind either clock or the wall. */
  public static Hlc receive(Hlc last, Hlc remote, long wallMillis, String deviceId) {
    long localMillis = last == null ? -1 : last.millis;
    long m = Math.max(wallMillis, Math.max(localMillis, remote.millis));
    if (m == localMillis && m == remote.millis) {
      return advance(m, Math.max(last.counter, remote.counter), deviceId);
    }
    if (m == localMillis) {
      return advance(m, last.counter, deviceId);
    }
    if (m == remote.millis) {
      return advance(m, remote.counter, deviceId);
    }
    return new Hlc(m, 0, deviceId);
  }

  private static Hlc advance(long millis, int counter, String deviceId) {
    // A counter overflow borrows the next millisecond rather than wrapping and running backwards.
    return counter < MAX_COUNTER ? new Hlc(millis, counter + 1, deviceId) : new Hlc(millis + 1, 0, deviceId);
  }
}
