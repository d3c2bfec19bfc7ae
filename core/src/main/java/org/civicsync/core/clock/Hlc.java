package org.civicsync.core.clock;

/**
 * A hybrid logical clock reading, written {@code <millis:15>-<counter:5>-<deviceId>}: wall-clock
 * milliseconds zero-padded to 15 digits, a counter zero-padded to 5 digits, and the id of the
 * device that made it. The fixed widths make string order equal clock order, so stores and
 * clients in any language compare readings as plain strings.
 */
public record Hlc(long millis, int counter, String deviceId) implements Comparable<Hlc> {
  /** The largest counter the 5-digit field holds. */
  public static final int MAX_COUNTER = 99_999;
  private static final int MILLIS_DIGITS = 15;
  private static final int COUNTER_DIGITS = 5;
  private static final int MAX_DEVICE_ID = 64;

  // Checked and written by hand, not with a regular expression and String.format: the server
  // reads and compares readings for every field of every mutation it decides (a regular
  // expression and a format per reading were about 2 % of its CPU on a large ingest).
  public Hlc {
    if (millis < 0 || millis > 999_999_999_999_999L || counter < 0 || counter > MAX_COUNTER || !isDeviceId(deviceId)) {
      throw new IllegalArgumentException("not an HLC reading: " + millis + "/" + counter + "/" + deviceId);
    }
  }

  private static boolean isDeviceId(String id) {
    if (id == null || id.isEmpty() || id.length() > MAX_DEVICE_ID) {
      return false;
    }
    for (int i = 0; i < id.length(); i++) {
      char c = id.charAt(i);
      if (!(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-')) {
        return false;
      }
    }
    return true;
  }

  /**
   * Parses the wire form.
   *
   * @throws IllegalArgumentException when {@code text} is not one
   */
  public static Hlc parse(String text) {
    int deviceAt = MILLIS_DIGITS + 1 + COUNTER_DIGITS + 1;
    if (text == null || text.length() <= deviceAt || text.charAt(MILLIS_DIGITS) != '-' || text.charAt(deviceAt - 1) != '-') {
      throw new IllegalArgumentException("not an HLC reading: " + text);
    }
    long millis = digits(text, 0, MILLIS_DIGITS);
    long counter = digits(text, MILLIS_DIGITS + 1, COUNTER_DIGITS);
    String device = text.substring(deviceAt);
    if (millis < 0 || counter < 0 || !isDeviceId(device)) {
      throw new IllegalArgumentException("not an HLC reading: " + text);
    }
    return new Hlc(millis, (int) counter, device);
  }

  /** The number written by {@code n} ASCII digits from {@code from}, or -1 if any is not a digit. */
  private static long digits(String s, int from, int n) {
    long v = 0;
    for (int i = from; i < from + n; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      v = v * 10 + (c - '0');
    }
    return v;
  }

  /** The wire form; string order of wire forms is the order of readings. */
  @Override
  public String toString() {
    StringBuilder b = new StringBuilder(MILLIS_DIGITS + COUNTER_DIGITS + 2 + deviceId.length());
    pad(b, millis, MILLIS_DIGITS).append('-');
    pad(b, counter, COUNTER_DIGITS).append('-');
    return b.append(deviceId).toString();
  }

  private static StringBuilder pad(StringBuilder b, long v, int width) {
    String digits = Long.toString(v);
    for (int i = digits.length(); i < width; i++) {
      b.append('0');
    }
    return b.append(digits);
  }

  /** The order of the wire forms as strings (fixed-width numbers first, then the device id). */
  @Override
  public int compareTo(Hlc o) {
    int c = Long.compare(millis, o.millis);
    if (c == 0) {
      c = Integer.compare(counter, o.counter);
    }
    return c != 0 ? c : deviceId.compareTo(o.deviceId);
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
