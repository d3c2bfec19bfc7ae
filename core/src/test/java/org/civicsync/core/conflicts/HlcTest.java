package org.civicsync.core.conflicts;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.civicsync.core.clock.Hlc;
import org.junit.jupiter.api.Test;

class HlcTest {
  @Test
  void wireFormRoundTripsAndStringOrderIsClockOrder() {
    long seed = System.nanoTime();
    Random r = new Random(seed);
    List<Hlc> readings = new ArrayList<>();
    for (int i = 0; i < 500; i++) {
      readings.add(new Hlc(Math.abs(r.nextLong()) % 2_000_000_000_000L, r.nextInt(Hlc.MAX_COUNTER + 1), "dev" + r.nextInt(12)));
    }
    for (Hlc a : readings) {
      assertThat(Hlc.parse(a.toString())).as("seed %s", seed).isEqualTo(a);
      for (Hlc b : readings.subList(0, 20)) {
        int byClock = Long.compare(a.millis(), b.millis()) != 0 ? Long.compare(a.millis(), b.millis())
            : a.counter() != b.counter() ? Integer.compare(a.counter(), b.counter()) : a.deviceId().compareTo(b.deviceId());
        assertThat(Integer.signum(a.toString().compareTo(b.toString()))).as("seed %s: %s vs %s", seed, a, b).isEqualTo(Integer.signum(byClock));
        assertThat(Integer.signum(a.compareTo(b))).as("seed %s: %s vs %s", seed, a, b).isEqualTo(Integer.signum(byClock));
      }
    }
  }

  @Test
  void tickNeverRunsBackwardsWhenTheWallClockDoes() {
    Hlc h = Hlc.tick(null, 1_000, "d");
    Hlc next = Hlc.tick(h, 900, "d");
    assertThat(next).isGreaterThan(h);
    assertThat(next.millis()).isEqualTo(1_000);
    assertThat(next.counter()).isEqualTo(1);
    assertThat(Hlc.tick(next, 2_000, "d")).isEqualTo(new Hlc(2_000, 0, "d"));
  }

  @Test
  void receiveMovesPastTheRemoteReading() {
    Hlc local = new Hlc(1_000, 3, "a");
    Hlc remote = new Hlc(5_000, 7, "b");
    Hlc after = Hlc.receive(local, remote, 2_000, "a");
    assertThat(after).isGreaterThan(remote);
    assertThat(after.millis()).isEqualTo(5_000);
    assertThat(after.counter()).isEqualTo(8);
  }

  @Test
  void malformedReadingsAreRefused() {
    assertThatThrownBy(() -> Hlc.parse("1700000000000-00000-dev")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> Hlc.parse("001700000000000-00000-")).isInstanceOf(IllegalArgumentException.class);
    for (String bad : new String[] {"", "00170000000000a-00000-dev", "+01700000000000-00000-dev", "001700000000000_00000-dev",
        "001700000000000-0000x-dev", "001700000000000-00000_dev", "001700000000000-00000-de v", "001700000000000-00000-dév",
        "001700000000000-00000-" + "d".repeat(65), "001700000000000-000000-dev", " 001700000000000-00000-dev"}) {
      assertThatThrownBy(() -> Hlc.parse(bad)).as(bad).isInstanceOf(IllegalArgumentException.class);
    }
    assertThatThrownBy(() -> Hlc.parse(null)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new Hlc(1, 0, "no spaces")).isInstanceOf(IllegalArgumentException.class);
    assertThat(Hlc.parse("001700000000000-00000-" + "d".repeat(64)).deviceId()).hasSize(64);
    assertThat(Hlc.parse("999999999999999-99999-a_B-9")).isEqualTo(new Hlc(999_999_999_999_999L, 99_999, "a_B-9"));
  }
}
