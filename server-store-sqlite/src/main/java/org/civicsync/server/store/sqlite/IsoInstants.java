package org.civicsync.server.store.sqlite;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDate;

/**
 * Instants as this store writes them ({@link Instant#toString()}), read back without
 * {@link Instant#parse}: the formatter's general parser was 40 % of reading a page of the change
 * feed. Only the exact form {@code Instant.toString()} gives for years 0000–9999 is read by hand
 * ({@code yyyy-MM-ddTHH:mm:ss}, then no fraction or one of 3, 6 or 9 digits, then {@code Z});
 * anything else goes to {@link Instant#parse}, which reads or refuses it as before.
 */
final class IsoInstants {
  private IsoInstants() {}

  static Instant parse(String s) {
    int n = s.length();
    if ((n == 20 || n == 24 || n == 27 || n == 30) && s.charAt(4) == '-' && s.charAt(7) == '-' && s.charAt(10) == 'T'
        && s.charAt(13) == ':' && s.charAt(16) == ':' && s.charAt(n - 1) == 'Z' && (n == 20 || s.charAt(19) == '.')) {
      int year = digits(s, 0, 4);
      int month = digits(s, 5, 7);
      int day = digits(s, 8, 10);
      int hour = digits(s, 11, 13);
      int minute = digits(s, 14, 16);
      int second = digits(s, 17, 19);
      int fraction = n == 20 ? 0 : digits(s, 20, n - 1);
      if (year >= 0 && month >= 0 && day >= 0 && hour >= 0 && hour < 24 && minute >= 0 && minute < 60 && second >= 0 && second < 60
          && fraction >= 0) {
        try {
          long epochDay = LocalDate.of(year, month, day).toEpochDay();
          int nanos = switch (n) {
            case 24 -> fraction * 1_000_000;
            case 27 -> fraction * 1_000;
            default -> fraction;
          };
          return Instant.ofEpochSecond(epochDay * 86_400 + hour * 3_600 + minute * 60 + second, nanos);
        } catch (DateTimeException invalidDate) {
          // Falls through: Instant.parse refuses it in its own words.
        }
      }
    }
    return Instant.parse(s);
  }

  /** The decimal number in {@code s[from, to)}, or -1 if any of it is not an ASCII digit. */
  private static int digits(String s, int from, int to) {
    int v = 0;
    for (int i = from; i < to; i++) {
      char c = s.charAt(i);
      if (c < '0' || c > '9') {
        return -1;
      }
      v = v * 10 + (c - '0');
    }
    return v;
  }
}
