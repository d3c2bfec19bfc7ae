package org.civicsync.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** Runs the same task on several threads at once, as several devices or writers do, and times them. */
final class Workers {
  /** The work of worker number {@code worker}. */
  interface Task {
    void run(int worker) throws Exception;
  }

  private Workers() {}

  /**
   * Runs {@code task} for workers 0 to {@code n - 1}, each on a thread of its own (virtual, or a
   * platform thread for blocking JDBC), and returns the seconds until the last one finished.
   *
   * @throws IllegalStateException with the first failure of any worker, after all finished
   */
  static double run(int n, boolean platform, String what, Task task) throws InterruptedException {
    List<Thread> threads = new ArrayList<>();
    List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
    long t0 = System.nanoTime();
    for (int i = 0; i < n; i++) {
      int worker = i;
      Runnable r = () -> {
        try {
          task.run(worker);
        } catch (Throwable t) {
          failures.add(t);
        }
      };
      threads.add(platform ? Thread.ofPlatform().start(r) : Thread.ofVirtual().start(r));
    }
    for (Thread t : threads) {
      t.join();
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    if (!failures.isEmpty()) {
      throw new IllegalStateException(what + " failed", failures.get(0));
    }
    return seconds;
  }
}
