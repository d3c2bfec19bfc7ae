package org.civicsync.server.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.List;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

class RowWorkTest {
  @Test
  void eachRunsEveryRowExactlyOnceWhetherSplitOrNot() {
    for (int n : new int[] {0, 1, RowWork.PARALLEL_FROM - 1, RowWork.PARALLEL_FROM, 5_000}) {
      AtomicIntegerArray runs = new AtomicIntegerArray(n);
      RowWork.each(n, runs::incrementAndGet);
      assertThat(IntStream.range(0, n).map(runs::get)).as("n = %d", n).allMatch(r -> r == 1);
    }
  }

  @Test
  void mapKeepsTheRowsOrder() {
    List<Integer> rows = IntStream.range(0, 5_000).boxed().toList();
    assertThat(RowWork.map(rows, i -> "row " + i)).isEqualTo(rows.stream().map(i -> "row " + i).toList());
    assertThat(RowWork.map(rows.subList(0, 3), i -> i * 2)).containsExactly(0, 2, 4);
  }

  @Test
  void aRowsFailureReachesTheCaller() {
    assertThatThrownBy(() -> RowWork.each(1_000, i -> {
      if (i == 777) {
        throw new IllegalStateException("cannot serialise row 777");
      }
    })).isInstanceOf(IllegalStateException.class).hasMessageContaining("row 777");
  }
}
