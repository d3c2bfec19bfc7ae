package org.civicsync.testing.link;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.civicsync.testing.link.LinkProfile.PERFECT;

import java.time.Duration;
import org.junit.jupiter.api.Test;

class LinkProfileTest {
  @Test
  void theStandardProfilesHaveTheDocumentedShapes() {
    assertShape(LinkProfile.TWO_G_RURAL, 18_000, 20_000, 650, 0.02);
    assertShape(LinkProfile.TWO_G_URBAN, 32_000, 35_000, 650, 0);
    assertShape(LinkProfile.EDGE_LOSSY, 200_000, 240_000, 420, 0.01);
    assertShape(LinkProfile.THREE_G_SLOW, 330_000, 780_000, 100, 0);
    assertShape(PERFECT, 0, 0, 0, 0);
    for (LinkProfile p :
        new LinkProfile[] {
          PERFECT, LinkProfile.TWO_G_RURAL, LinkProfile.TWO_G_URBAN, LinkProfile.EDGE_LOSSY,
          LinkProfile.THREE_G_SLOW
        }) {
      assertThat(p.lostAck() + p.duplicateRequest() + p.resetMidRequest() + p.delayResponse()
              + p.reorder())
          .as("standard profiles inject no HTTP fault: %s", p)
          .isZero();
    }
  }

  @Test
  void timeScaleDividesEveryDelayAndMultipliesEveryRate() {
    LinkProfile base =
        LinkProfile.TWO_G_RURAL.withDelayResponse(0.1, Duration.ofSeconds(2))
            .withReorder(0.2, Duration.ofMillis(500));

    LinkProfile fast = base.timeScale(10);

    assertShape(fast, 180_000, 200_000, 65, 0.02);
    assertThat(fast.delayResponseMax()).isEqualTo(Duration.ofMillis(200));
    assertThat(fast.reorderMax()).isEqualTo(Duration.ofMillis(50));
    assertThat(fast.delayResponse()).isEqualTo(0.1);
    assertThat(fast.reorder()).isEqualTo(0.2);
    assertThat(fast.packetBytes()).isEqualTo(base.packetBytes());
    assertThat(fast.name()).contains("2G rural");
    assertThat(PERFECT.timeScale(10).upBitsPerSecond()).as("unlimited stays unlimited").isZero();
    assertThat(base.timeScale(0.5).latency()).isEqualTo(Duration.ofMillis(1300));
  }

  @Test
  void withersChangeOnlyTheirProperty() {
    LinkProfile p = LinkProfile.EDGE_LOSSY.withLostAck(0.3);

    assertThat(p.lostAck()).isEqualTo(0.3);
    assertThat(p.withLostAck(0)).isEqualTo(LinkProfile.EDGE_LOSSY);
    assertThat(p.withoutFaults().loss()).isZero();
    assertThat(p.withoutFaults().lostAck()).isZero();
    assertThat(p.withoutFaults().latency()).isEqualTo(Duration.ofMillis(420));
    assertThat(p.toString()).contains("EDGE lossy", "lostAck 30", "420 ms");
  }

  @Test
  void impossibleValuesAreRefused() {
    assertThatThrownBy(() -> PERFECT.withBandwidth(-1, 0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.withLoss(1.5)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.withLostAck(Double.NaN))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.withPacketBytes(0))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.withLatency(Duration.ofMillis(-1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.timeScale(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PERFECT.timeScale(Double.NaN))
        .isInstanceOf(IllegalArgumentException.class);
  }

  private static void assertShape(
      LinkProfile p, long up, long down, long latencyMillis, double loss) {
    assertThat(p.upBitsPerSecond()).as("up").isEqualTo(up);
    assertThat(p.downBitsPerSecond()).as("down").isEqualTo(down);
    assertThat(p.latency()).as("latency").isEqualTo(Duration.ofMillis(latencyMillis));
    assertThat(p.loss()).as("loss").isEqualTo(loss);
  }
}
