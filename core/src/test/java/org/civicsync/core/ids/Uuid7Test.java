package org.civicsync.core.ids;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.HashSet;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class Uuid7Test {
  /** Hands out fixed "random" bits, to reproduce the RFC's example. */
  private static final class Fixed extends Random {
    private final int a;
    private final long b;

    Fixed(int a, long b) {
      this.a = a;
      this.b = b;
    }

    @Override
    public int nextInt() {
      return a;
    }

    @Override
    public long nextLong() {
      return b;
    }
  }

  @Test
  void matchesTheExampleOfRfc9562() {
    // RFC 9562, appendix A.6: Tuesday, February 22, 2022 2:22:22.00 PM GMT-05:00.
    UUID id = Uuid7.next(0x017F22E279B0L, new Fixed(0xCC3, 0x18C4DC0C0C07398FL));
    assertThat(id.toString()).isEqualTo("017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
    assertThat(id.version()).isEqualTo(7);
    assertThat(id.variant()).isEqualTo(2);
    assertThat(Uuid7.millis(id)).isEqualTo(0x017F22E279B0L);
  }

  @Test
  void laterMillisecondsSortLaterAsTextAndAsBytes() {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    for (int i = 0; i < 10_000; i++) {
      long a = random.nextLong(1L << 48);
      long b = random.nextLong(1L << 48);
      if (a == b) {
        continue;
      }
      UUID early = Uuid7.next(Math.min(a, b), random);
      UUID late = Uuid7.next(Math.max(a, b), random);
      assertThat(early.toString()).as("seed %d", seed).isLessThan(late.toString());
      // PostgreSQL's uuid and SQLite's blob order: the bytes, unsigned, most significant first.
      assertThat(Long.compareUnsigned(early.getMostSignificantBits(), late.getMostSignificantBits())).as("seed %d", seed).isNegative();
      assertThat(Uuid7.millis(early)).as("seed %d", seed).isEqualTo(Math.min(a, b));
      assertThat(late.version()).isEqualTo(7);
      assertThat(late.variant()).isEqualTo(2);
    }
  }

  @Test
  void idsOfOneMillisecondAreDistinct() {
    long seed = System.nanoTime();
    Random random = new Random(seed);
    Set<UUID> seen = new HashSet<>();
    for (int i = 0; i < 100_000; i++) {
      assertThat(seen.add(Uuid7.next(1_780_000_000_000L, random))).as("seed %d", seed).isTrue();
    }
  }

  @Test
  void refusesInstantsThatDoNotFitAndIdsOfOtherVersions() {
    assertThatThrownBy(() -> Uuid7.next(-1, new Random(1))).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Uuid7.next(1L << 48, new Random(1))).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Uuid7.millis(UUID.fromString("f81d4fae-7dec-41d0-a765-00a0c91e6bf6")))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a version 7");
  }
}
