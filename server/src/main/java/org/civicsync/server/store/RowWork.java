package org.civicsync.server.store;

import java.util.List;
import java.util.function.Function;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Per-row work of a large write — the rows' JSON text, their audit digests — spread over every
 * core. A tenant's writes hold its lock while they run (see {@link ServerStore#write}), so the
 * Java a writer does inside it runs in series with every other writer of the tenant, while the
 * machine's other cores mostly wait for that lock; a batch of a push's size is worth splitting
 * (docs/benchmarks.md, item 28). Small batches stay on the caller's thread. The work must be
 * free of shared mutable state: each call touches only its own row's slot.
 */
public final class RowWork {
  /** Below this many rows the split costs more than it saves. */
  static final int PARALLEL_FROM = 64;

  private RowWork() {}

  /** Runs {@code work} once for every index in {@code [0, n)}; returns when all have run. */
  public static void each(int n, IntConsumer work) {
    IntStream range = IntStream.range(0, n);
    (n >= PARALLEL_FROM ? range.parallel() : range).forEach(work);
  }

  /** {@code f} of each element, in the list's order. */
  public static <T, R> List<R> map(List<T> rows, Function<? super T, ? extends R> f) {
    return (rows.size() >= PARALLEL_FROM ? rows.parallelStream() : rows.stream()).<R>map(f).toList();
  }
}
