package org.civicsync.contracts;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

class PushResponseTest {
  private static final Instant AT = Instant.parse("2026-11-22T08:02:01Z");

  private static Mutation delete(long seq) {
    return new Mutation(UUID.randomUUID(), seq, "appointments", UUID.randomUUID(), MutationOp.DELETE, 3, null, "x", "2026-11-22T08:00:00Z");
  }

  @Test
  void minimalAnswerReadsBackOntoTheMutationsByPosition() {
    List<Mutation> sent = List.of(delete(1), delete(2), delete(3));
    PushResponse full = new PushResponse(List.of(MutationResult.applied(sent.get(0).mutationId(), sent.get(0).recordId(), 4),
        MutationResult.held(sent.get(1).mutationId(), sent.get(1).recordId(), 7),
        MutationResult.applied(sent.get(2).mutationId(), sent.get(2).recordId(), 9).asReplay()), AT);

    PushResponse minimal = full.minimal();

    assertThat(minimal.results()).allSatisfy(r -> {
      assertThat(r.mutationId()).isNull();
      assertThat(r.recordId()).isNull();
    });
    assertThat(minimal.withIdsOf(sent)).isEqualTo(full);
    assertThat(full.withIdsOf(sent)).isEqualTo(full);
  }

  @Test
  void answerThatDoesNotLineUpWithThePushIsRefused() {
    List<Mutation> sent = List.of(delete(1), delete(2));
    PushResponse one = new PushResponse(List.of(MutationResult.applied(sent.get(0).mutationId(), sent.get(0).recordId(), 4)), AT);
    assertThatThrownBy(() -> one.minimal().withIdsOf(sent)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("2 mutations and got 1");

    PushResponse swapped = new PushResponse(List.of(MutationResult.applied(sent.get(1).mutationId(), sent.get(1).recordId(), 4),
        MutationResult.applied(sent.get(0).mutationId(), sent.get(0).recordId(), 4)), AT);
    assertThatThrownBy(() -> swapped.withIdsOf(sent)).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("result 0 answers");
  }
}
