package org.civicsync.client.sync;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.civicsync.client.sync.SyncEngine.Event;
import org.civicsync.client.sync.SyncEngine.Instruction;
import org.civicsync.client.sync.SyncEngine.Phase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The engine's transitions, as a table: from a phase, an event leads to a phase and instructions. */
class SyncEngineTest {
  private static final Duration PERIOD = Duration.ofMinutes(5);

  /** An engine driven into {@code phase} by real events. */
  private static SyncEngine in(Phase phase) {
    SyncEngine e = new SyncEngine(PERIOD, new Backoff(Duration.ofSeconds(1), Duration.ofMinutes(1), new Random(1)));
    if (phase == Phase.STOPPED) {
      return e;
    }
    e.on(new SyncEngine.Started()); // -> PUSHING
    switch (phase) {
      case PUSHING -> { }
      case PULLING -> e.on(new SyncEngine.PushDone(false));
      case OUTCOMES -> {
        e.on(new SyncEngine.PushDone(false));
        e.on(new SyncEngine.PullDone(false));
      }
      case IDLE -> {
        e.on(new SyncEngine.PushDone(false));
        e.on(new SyncEngine.PullDone(false));
        e.on(new SyncEngine.OutcomesDone(false));
      }
      case RENEWING -> e.on(new SyncEngine.Failed(SyncEngine.Failure.TOKEN_EXPIRED));
      case BACKING_OFF -> e.on(new SyncEngine.Failed(SyncEngine.Failure.NETWORK));
      default -> throw new IllegalArgumentException(phase.toString());
    }
    assertThat(e.phase()).isEqualTo(phase);
    return e;
  }

  static Stream<Arguments> table() {
    return Stream.of(
        row(Phase.STOPPED, new SyncEngine.Started(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.STOPPED, new SyncEngine.TimerFired(), Phase.STOPPED),
        row(Phase.STOPPED, new SyncEngine.LocalChange(), Phase.STOPPED),
        row(Phase.IDLE, new SyncEngine.LocalChange(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.IDLE, new SyncEngine.RemoteChange(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.STOPPED, new SyncEngine.RemoteChange(), Phase.STOPPED),
        row(Phase.BACKING_OFF, new SyncEngine.RemoteChange(), Phase.BACKING_OFF),
        row(Phase.IDLE, new SyncEngine.TimerFired(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.IDLE, new SyncEngine.WentOnline(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.IDLE, new SyncEngine.Stopped(), Phase.STOPPED),
        row(Phase.PUSHING, new SyncEngine.PushDone(true), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.PUSHING, new SyncEngine.PushDone(false), Phase.PULLING, SyncEngine.Pull.class),
        row(Phase.PUSHING, new SyncEngine.LocalChange(), Phase.PUSHING),
        row(Phase.PUSHING, new SyncEngine.TimerFired(), Phase.PUSHING),
        row(Phase.PUSHING, new SyncEngine.Failed(SyncEngine.Failure.NETWORK), Phase.BACKING_OFF, SyncEngine.Wait.class),
        row(Phase.PUSHING, new SyncEngine.Failed(SyncEngine.Failure.TOKEN_EXPIRED), Phase.RENEWING, SyncEngine.RenewToken.class),
        row(Phase.PUSHING, new SyncEngine.Failed(SyncEngine.Failure.RATE_LIMITED, Optional.of(Duration.ofHours(1))), Phase.BACKING_OFF,
            SyncEngine.Wait.class),
        row(Phase.PUSHING, new SyncEngine.Failed(SyncEngine.Failure.FATAL), Phase.STOPPED, SyncEngine.Halted.class),
        row(Phase.PULLING, new SyncEngine.PullDone(true), Phase.PULLING, SyncEngine.Pull.class),
        row(Phase.PULLING, new SyncEngine.PullDone(false), Phase.OUTCOMES, SyncEngine.FetchOutcomes.class),
        row(Phase.PULLING, new SyncEngine.Failed(SyncEngine.Failure.NETWORK), Phase.BACKING_OFF, SyncEngine.Wait.class),
        row(Phase.OUTCOMES, new SyncEngine.OutcomesDone(true), Phase.OUTCOMES, SyncEngine.FetchOutcomes.class),
        row(Phase.OUTCOMES, new SyncEngine.OutcomesDone(false), Phase.IDLE, SyncEngine.Synced.class, SyncEngine.Wait.class),
        row(Phase.RENEWING, new SyncEngine.TokenRenewed(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.RENEWING, new SyncEngine.Failed(SyncEngine.Failure.TOKEN_EXPIRED), Phase.BACKING_OFF, SyncEngine.Wait.class),
        row(Phase.RENEWING, new SyncEngine.Failed(SyncEngine.Failure.NETWORK), Phase.BACKING_OFF, SyncEngine.Wait.class),
        row(Phase.BACKING_OFF, new SyncEngine.TimerFired(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.BACKING_OFF, new SyncEngine.WentOnline(), Phase.PUSHING, SyncEngine.Push.class),
        row(Phase.BACKING_OFF, new SyncEngine.LocalChange(), Phase.BACKING_OFF),
        row(Phase.BACKING_OFF, new SyncEngine.PushDone(false), Phase.BACKING_OFF));
  }

  @SafeVarargs
  private static Arguments row(Phase from, Event event, Phase to, Class<? extends Instruction>... instructions) {
    return Arguments.of(from, event, to, List.of(instructions));
  }

  @ParameterizedTest(name = "{0} + {1} -> {2} {3}")
  @MethodSource("table")
  void eachEventInEachPhaseLeadsWhereTheTableSays(Phase from, Event event, Phase to, List<Class<?>> expected) {
    SyncEngine e = in(from);
    List<Instruction> out = e.on(event);
    assertThat(e.phase()).isEqualTo(to);
    assertThat(out.stream().map(i -> (Class<?>) i.getClass()).toList()).isEqualTo(expected);
  }

  @Test
  void aLocalChangeDuringACycleStartsAnotherRightAfterIt() {
    SyncEngine e = in(Phase.PULLING);
    e.on(new SyncEngine.LocalChange());
    e.on(new SyncEngine.PullDone(false));
    List<Instruction> out = e.on(new SyncEngine.OutcomesDone(false));
    assertThat(out.stream().map(i -> (Class<?>) i.getClass()).toList()).isEqualTo(List.of(SyncEngine.Synced.class, SyncEngine.Push.class));
  }

  @Test
  void offlineTheEngineWaitsAndOnReconnectItSyncsAtOnce() {
    SyncEngine e = in(Phase.IDLE);
    e.on(new SyncEngine.WentOffline());
    assertThat(e.on(new SyncEngine.TimerFired())).isEmpty();
    assertThat(e.on(new SyncEngine.LocalChange())).isEmpty();
    assertThat(e.on(new SyncEngine.WentOnline())).singleElement().isInstanceOf(SyncEngine.Push.class);
  }

  @Test
  void backoffGrowsWithFullJitterUpToItsCapAndResetsAfterASuccess() {
    Supplier<SyncEngine> fresh = () -> new SyncEngine(PERIOD, new Backoff(Duration.ofSeconds(1), Duration.ofSeconds(30), new Random(7)));
    SyncEngine e = fresh.get();
    e.on(new SyncEngine.Started());
    long max = 0;
    for (int i = 0; i < 12; i++) {
      Duration wait = ((SyncEngine.Wait) e.on(new SyncEngine.Failed(SyncEngine.Failure.NETWORK)).get(0)).delay();
      assertThat(wait).isBetween(Duration.ZERO, Duration.ofSeconds(30));
      if (i < 3) {
        assertThat(wait).as("attempt %s", i).isLessThanOrEqualTo(Duration.ofSeconds(1L << i));
      }
      max = Math.max(max, wait.toMillis());
      e.on(new SyncEngine.TimerFired());
    }
    assertThat(max).as("the ceiling grew past the first steps").isGreaterThan(4_000);
    e.on(new SyncEngine.PushDone(false));
    e.on(new SyncEngine.PullDone(false));
    e.on(new SyncEngine.OutcomesDone(false));
    e.on(new SyncEngine.TimerFired());
    Duration afterSuccess = ((SyncEngine.Wait) e.on(new SyncEngine.Failed(SyncEngine.Failure.NETWORK)).get(0)).delay();
    assertThat(afterSuccess).as("reset after success").isLessThanOrEqualTo(Duration.ofSeconds(1));
  }

  @Test
  void aRateLimitWaitsAtLeastWhatTheServerSaid() {
    SyncEngine e = in(Phase.PUSHING);
    Duration wait = ((SyncEngine.Wait) e.on(new SyncEngine.Failed(SyncEngine.Failure.RATE_LIMITED, Optional.of(Duration.ofMinutes(9))))
        .get(0)).delay();
    assertThat(wait).isGreaterThanOrEqualTo(Duration.ofMinutes(9));
  }
}
