package org.civicsync.server.store.sqlite;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Random;
import org.junit.jupiter.api.Test;

class IsoInstantsTest {
  /** Every precision, before 1970, leap days, the limits of the four-digit years: read back as written. */
  @Test
  void instantsAsThisStoreWritesThemAreReadBackExactly() {
    long seed = System.nanoTime();
    Random r = new Random(seed);
    long min = Instant.parse("0000-01-01T00:00:00Z").getEpochSecond();
    long max = Instant.parse("9999-12-31T23:59:59Z").getEpochSecond();
    for (int i = 0; i < 100_000; i++) {
      long second = switch (r.nextInt(4)) {
        case 0 -> min + Math.floorMod(r.nextLong(), max - min + 1);
        case 1 -> Instant.parse("2024-02-29T23:59:59Z").getEpochSecond() + r.nextInt(3) - 1;
        case 2 -> r.nextBoolean() ? min + r.nextInt(100) : max - r.nextInt(100);
        default -> 1_700_000_000L + r.nextInt(100_000_000);
      };
      int nanos = switch (r.nextInt(4)) {
        case 0 -> 0;
        case 1 -> r.nextInt(1000) * 1_000_000;
        case 2 -> r.nextInt(1_000_000) * 1_000;
        default -> r.nextInt(1_000_000_000);
      };
      Instant at = Instant.ofEpochSecond(second, nanos);
      assertThat(IsoInstants.parse(at.toString())).as("seed %d: %s", seed, at).isEqualTo(at);
    }
  }

  /** Other forms go to Instant.parse: read where it reads them, refused where it refuses them. */
  @Test
  void otherFormsAreReadOrRefusedAsInstantParseDoes() {
    for (String s : new String[] {"+10000-01-01T00:00:00Z", "2026-12-07T03:10:00.1Z", "2026-12-07T03:10:00.12345Z",
        "2026-12-07T24:00:00Z", "2026-12-07T03:10:00+01:00"}) {
      assertThat(IsoInstants.parse(s)).as(s).isEqualTo(Instant.parse(s));
    }
    for (String s : new String[] {"2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z", "2026-12-07T03:10:60Z",
        "2026-12-07 03:10:00Z", "2026-12-07T03:10Z", "2026-1a-07T03:10:00Z", "2026-12-07T03:10:00.12aZ", ""}) {
      assertThatThrownBy(() -> IsoInstants.parse(s)).as(s).isInstanceOf(DateTimeParseException.class);
    }
  }
}
