package org.civicsync.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalDouble;
import java.util.stream.Stream;

/**
 * CPU seconds (user and system) processes have used, from Linux's {@code /proc}: what the server
 * and PostgreSQL spend per mutation, which a throughput figure alone hides (a figure can move
 * because the machine got busier, or because the work got cheaper). Empty where {@code /proc} is
 * not readable.
 */
final class CpuTime {
  /** Clock ticks per second of {@code /proc/<pid>/stat} (USER_HZ, 100 on Linux's common builds). */
  private static final double TICKS = 100.0;

  private CpuTime() {}

  /** CPU seconds the process has used so far, all its threads (and any children it has reaped). */
  static OptionalDouble of(long pid) {
    return ticks(Path.of("/proc", Long.toString(pid))).stream().mapToDouble(t -> t / TICKS).findFirst();
  }

  /**
   * CPU seconds used so far by every process named {@code postgres} on this machine (a local
   * PostgreSQL's backends and helpers), with those of backends that have exited: the postmaster
   * reaps them, and Linux adds their time to its own children's count.
   */
  static OptionalDouble postgres() {
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      long sum = procs.filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit)).filter(CpuTime::isPostgres)
          .mapToLong(p -> ticks(p).orElse(0L)).sum();
      return sum == 0 ? OptionalDouble.empty() : OptionalDouble.of(sum / TICKS);
    } catch (Exception e) {
      return OptionalDouble.empty();
    }
  }

  /**
   * CPU seconds a JVM's threads have used so far, by kind: the JIT's compiler threads, the garbage
   * collector's, and all its threads. Threads that have exited are not counted (the bench's server
   * keeps its compiler threads for its whole life, so that theirs is not lost).
   */
  record Threads(double compiler, double gc, double all) {
    Threads minus(Threads earlier) {
      return new Threads(compiler - earlier.compiler, gc - earlier.gc, all - earlier.all);
    }
  }

  /** The JVM process {@code pid}'s {@link Threads}; empty where {@code /proc} is not readable. */
  static java.util.Optional<Threads> threads(long pid) {
    double compiler = 0;
    double gc = 0;
    double all = 0;
    try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path t : tasks.toList()) {
        java.util.Optional<Long> own = ownTicks(t);
        if (own.isEmpty()) {
          continue; // exited while listed
        }
        double seconds = own.get() / TICKS;
        String name = Files.readString(t.resolve("comm")).trim();
        all += seconds;
        // HotSpot's names: "C2 CompilerThre", "C1 CompilerThre"; "GC Thread#0", "G1 Conc#0", "G1 Refine#0", …
        if (name.startsWith("C1 Compiler") || name.startsWith("C2 Compiler")) {
          compiler += seconds;
        } else if (name.startsWith("GC Thread") || name.startsWith("G1 ")) {
          gc += seconds;
        }
      }
    } catch (Exception e) {
      return java.util.Optional.empty();
    }
    return all == 0 ? java.util.Optional.empty() : java.util.Optional.of(new Threads(compiler, gc, all));
  }

  /** Microseconds of CPU per item between two readings; 0 when either is missing. */
  static double microsEach(OptionalDouble before, OptionalDouble after, long items) {
    return before.isPresent() && after.isPresent() ? 1e6 * (after.getAsDouble() - before.getAsDouble()) / items : 0;
  }

  private static boolean isPostgres(Path proc) {
    try {
      return Files.readString(proc.resolve("comm")).trim().equals("postgres");
    } catch (Exception e) {
      return false;
    }
  }

  private static java.util.Optional<Long> ticks(Path proc) {
    return fields(proc).map(f -> Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]));
  }

  /** A thread's own time (a thread reaps no children). */
  private static java.util.Optional<Long> ownTicks(Path task) {
    return fields(task).map(f -> Long.parseLong(f[11]) + Long.parseLong(f[12]));
  }

  /**
   * The fields of {@code stat} after the command name (which may hold spaces) in parentheses:
   * utime, stime, and the same of reaped children (cutime, cstime) are the 12th to the 15th.
   */
  private static java.util.Optional<String[]> fields(Path proc) {
    try {
      String stat = Files.readString(proc.resolve("stat"));
      return java.util.Optional.of(stat.substring(stat.lastIndexOf(')') + 2).split(" "));
    } catch (Exception e) {
      return java.util.Optional.empty();
    }
  }
}
