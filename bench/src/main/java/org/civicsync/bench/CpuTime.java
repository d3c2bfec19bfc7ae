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
    try {
      String stat = Files.readString(proc.resolve("stat"));
      // Fields after the command name (which may hold spaces) in parentheses: utime, stime, and the
      // same of reaped children (cutime, cstime), the 12th to the 15th.
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      return java.util.Optional.of(Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]));
    } catch (Exception e) {
      return java.util.Optional.empty();
    }
  }
}
