package org.civicsync.client.sync;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The sync state machine. It performs no I/O and reads no clock: {@link #on} takes one event and
 * returns what to do next. One sync at a time: a cycle pushes until nothing is pending, pulls until
 * the feed has no more, fetches outcomes, then waits for the next period. Local changes during a
 * cycle start another right after it; failures wait out a backoff (sooner when the network comes
 * back); an expired token is renewed and the cycle starts over.
 */
public final class SyncEngine {
  /** Where the engine stands. */
  public enum Phase { IDLE, PUSHING, PULLING, OUTCOMES, RENEWING, BACKING_OFF, STOPPED }

  /** What happened. */
  public sealed interface Event {}

  /** The app started background sync. */
  public record Started() implements Event {}

  /** The network came back (or was found up). */
  public record WentOnline() implements Event {}

  public record WentOffline() implements Event {}

  /** A timer the engine asked for went off. */
  public record TimerFired() implements Event {}

  /** The app wrote locally: there is something to push. */
  public record LocalChange() implements Event {}

  /** The server said it has something new for the device (its live stream): like a local change, sync soon. */
  public record RemoteChange() implements Event {}

  /** A push finished; {@code morePending} when the outbox still has entries to send. */
  public record PushDone(boolean morePending) implements Event {}

  /** A pull page arrived; {@code hasMore} when the feed has more pages. */
  public record PullDone(boolean hasMore) implements Event {}

  /** An outcomes page arrived. */
  public record OutcomesDone(boolean hasMore) implements Event {}

  public record TokenRenewed() implements Event {}

  /** A step failed. */
  public record Failed(Failure failure, Optional<Duration> retryAfter) implements Event {
    public Failed(Failure failure) {
      this(failure, Optional.empty());
    }
  }

  /** The app stopped background sync. */
  public record Stopped() implements Event {}

  /** Why a step failed. */
  public enum Failure {
    /** No answer (offline, timeout, reset, 5xx): retry after a backoff. */
    NETWORK,
    /** 401 TOKEN_EXPIRED: renew the token by key, then start over. */
    TOKEN_EXPIRED,
    /** 429: wait at least Retry-After. */
    RATE_LIMITED,
    /** The device may not sync any more (revoked, unknown): stop. */
    FATAL
  }

  /** What to do. */
  public sealed interface Instruction {}

  public record Push() implements Instruction {}

  public record Pull() implements Instruction {}

  public record FetchOutcomes() implements Instruction {}

  public record RenewToken() implements Instruction {}

  /** Fire {@link TimerFired} after this long (replacing any earlier timer). */
  public record Wait(Duration delay) implements Instruction {}

  /** A cycle completed: everything was pushed and pulled. */
  public record Synced() implements Instruction {}

  /** Sync stopped for good (e.g. the device was revoked). */
  public record Halted(Failure why) implements Instruction {}

  private final Duration period;
  private final Backoff backoff;
  private Phase phase = Phase.STOPPED;
  private boolean online = true;
  private boolean again;

  /**
   * @param period how long to wait between cycles when nothing happens
   * @param backoff how long to wait after failures
   */
  public SyncEngine(Duration period, Backoff backoff) {
    this.period = period;
    this.backoff = backoff;
  }

  public Phase phase() {
    return phase;
  }

  public boolean online() {
    return online;
  }

  /** Feeds one event; returns the instructions to carry out, in order. */
  public List<Instruction> on(Event e) {
    List<Instruction> out = new ArrayList<>();
    if (e instanceof Stopped) {
      phase = Phase.STOPPED;
      return out;
    }
    if (e instanceof Started) {
      if (phase == Phase.STOPPED) {
        phase = Phase.IDLE;
        startCycle(out);
      }
      return out;
    }
    if (phase == Phase.STOPPED) {
      return out;
    }
    if (e instanceof WentOffline) {
      online = false;
      return out;
    }
    if (e instanceof WentOnline) {
      online = true;
      if (phase == Phase.IDLE || phase == Phase.BACKING_OFF) {
        startCycle(out);
      }
      return out;
    }
    if (e instanceof LocalChange || e instanceof RemoteChange) {
      if (phase == Phase.IDLE) {
        startCycle(out);
      } else {
        again = true;
      }
      return out;
    }
    if (e instanceof TimerFired) {
      if (phase == Phase.IDLE || phase == Phase.BACKING_OFF) {
        startCycle(out);
      }
      return out;
    }
    if (e instanceof PushDone p && phase == Phase.PUSHING) {
      if (p.morePending()) {
        out.add(new Push());
      } else {
        phase = Phase.PULLING;
        out.add(new Pull());
      }
    } else if (e instanceof PullDone p && phase == Phase.PULLING) {
      if (p.hasMore()) {
        out.add(new Pull());
      } else {
        phase = Phase.OUTCOMES;
        out.add(new FetchOutcomes());
      }
    } else if (e instanceof OutcomesDone o && phase == Phase.OUTCOMES) {
      if (o.hasMore()) {
        out.add(new FetchOutcomes());
      } else {
        backoff.reset();
        out.add(new Synced());
        phase = Phase.IDLE;
        if (again) {
          startCycle(out);
        } else {
          out.add(new Wait(period));
        }
      }
    } else if (e instanceof TokenRenewed && phase == Phase.RENEWING) {
      phase = Phase.PUSHING;
      out.add(new Push());
    } else if (e instanceof Failed f && phase != Phase.IDLE && phase != Phase.BACKING_OFF) {
      switch (f.failure()) {
        case TOKEN_EXPIRED -> {
          if (phase == Phase.RENEWING) {
            backOff(out, Optional.empty());
          } else {
            phase = Phase.RENEWING;
            out.add(new RenewToken());
          }
        }
        case NETWORK -> backOff(out, Optional.empty());
        case RATE_LIMITED -> backOff(out, f.retryAfter());
        case FATAL -> {
          phase = Phase.STOPPED;
          out.add(new Halted(Failure.FATAL));
        }
      }
    }
    return out;
  }

  private void startCycle(List<Instruction> out) {
    again = false;
    if (!online) {
      phase = Phase.IDLE;
      return;
    }
    phase = Phase.PUSHING;
    out.add(new Push());
  }

  private void backOff(List<Instruction> out, Optional<Duration> atLeast) {
    phase = Phase.BACKING_OFF;
    Duration d = backoff.next();
    if (atLeast.isPresent() && atLeast.get().compareTo(d) > 0) {
      d = atLeast.get();
    }
    out.add(new Wait(d));
  }
}
