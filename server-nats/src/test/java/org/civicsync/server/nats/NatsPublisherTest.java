package org.civicsync.server.nats;

import org.civicsync.testing.NatsTestServer;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.nats.client.Connection;
import io.nats.client.JetStreamManagement;
import io.nats.client.Nats;
import io.nats.client.api.MessageInfo;
import io.nats.client.api.RetentionPolicy;
import io.nats.client.api.StorageType;
import io.nats.client.api.StreamConfiguration;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.civicsync.server.events.EventPublisher.Outgoing;
import org.civicsync.server.events.EventPublisher.PublishException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Against a real nats-server with JetStream, started per test on its own port (see {@link NatsTestServer}). */
class NatsPublisherTest {
  private static final String STREAM = "CIVICSYNC_TEST";
  private static final Duration PUBLISH_TIMEOUT = Duration.ofSeconds(2);

  private NatsTestServer nats;

  @AfterEach
  void stopNats() {
    if (nats != null) {
      nats.close();
    }
  }

  private NatsSettings settings(List<String> subjects, Duration maxAge, Duration duplicateWindow) {
    return new NatsSettings(nats.url(), STREAM, subjects, maxAge, duplicateWindow, 1, PUBLISH_TIMEOUT);
  }

  private NatsSettings settings() {
    return settings(List.of("civicsync.>"), Duration.ofHours(1), Duration.ofMinutes(2));
  }

  @Test
  void theStreamIsCreatedWhenMissingAndUpdatedWhenItsSettingsDiffer() throws Exception {
    nats = NatsTestServer.launch();

    try (NatsPublisher publisher = NatsPublisher.connect(settings())) {
      StreamConfiguration created = streamConfig();
      assertThat(created.getSubjects()).containsExactly("civicsync.>");
      assertThat(created.getMaxAge()).isEqualTo(Duration.ofHours(1));
      assertThat(created.getDuplicateWindow()).isEqualTo(Duration.ofMinutes(2));
      assertThat(created.getStorageType()).isEqualTo(StorageType.File);
      assertThat(created.getRetentionPolicy()).isEqualTo(RetentionPolicy.Limits);
      assertThat(created.getReplicas()).isEqualTo(1);
      publisher.publish(events(0, 3));
    }

    NatsSettings changed =
        settings(List.of("civicsync.>", "audit.>"), Duration.ZERO, Duration.ofMinutes(5));
    try (NatsPublisher publisher = NatsPublisher.connect(changed)) {
      StreamConfiguration updated = streamConfig();
      assertThat(updated.getSubjects()).containsExactlyInAnyOrder("civicsync.>", "audit.>");
      assertThat(updated.getMaxAge()).isEqualTo(Duration.ZERO);
      assertThat(updated.getDuplicateWindow()).isEqualTo(Duration.ofMinutes(5));
      assertThat(messageCount()).as("updating keeps the stored events").isEqualTo(3);

      publisher.publish(List.of(new Outgoing("audit.login", UUID.randomUUID(), "{}".getBytes(UTF_8))));
      assertThat(messageCount()).isEqualTo(4);
    }
  }

  @Test
  void everyEventIsStoredOnceEvenWhenPublishedAgain() throws Exception {
    nats = NatsTestServer.launch();
    List<Outgoing> events = events(0, 500);

    try (NatsPublisher publisher = NatsPublisher.connect(settings())) {
      publisher.publish(events);
      publisher.publish(events);
      // The relay re-sends in whatever batches it has; duplicates must be recognised across them.
      for (int i = 0; i < events.size(); i += 70) {
        publisher.publish(events.subList(i, Math.min(events.size(), i + 70)));
      }
    }

    assertThat(messageCount()).isEqualTo(500);
    assertStoredInOrder(events);
  }

  @Test
  void publishingWhileTheServerIsDownFailsAndSucceedsAfterItComesBack() throws Exception {
    nats = NatsTestServer.launch();
    List<Outgoing> before = events(0, 20);
    List<Outgoing> duringOutage = events(20, 30);
    List<Outgoing> after = events(50, 10);

    try (NatsPublisher publisher = NatsPublisher.connect(settings())) {
      publisher.publish(before);
      nats.stop();

      long started = System.nanoTime();
      assertThatThrownBy(() -> publisher.publish(duringOutage)).isInstanceOf(PublishException.class);
      assertThat(Duration.ofNanos(System.nanoTime() - started))
          .isLessThan(PUBLISH_TIMEOUT.plusSeconds(1));

      nats.start();
      // Like the relay: send the failed batch again until the broker takes it.
      publishEventually(publisher, duringOutage);
      publisher.publish(duringOutage);
      publisher.publish(after);
    }

    List<Outgoing> all = new ArrayList<>(before);
    all.addAll(duringOutage);
    all.addAll(after);
    assertThat(messageCount()).isEqualTo(all.size());
    assertStoredInOrder(all);
  }

  @Test
  void aBrokerThatDoesNotAnswerFailsThePublishWithinTheTimeoutAndARetryStoresEachEventOnce()
      throws Exception {
    nats = NatsTestServer.launch();
    List<Outgoing> events = events(0, 50);

    try (NatsPublisher publisher = NatsPublisher.connect(settings())) {
      publisher.publish(events.subList(0, 10));
      nats.pause();
      long started = System.nanoTime();
      try {
        assertThatThrownBy(() -> publisher.publish(events))
            .isInstanceOf(PublishException.class)
            .hasMessageContaining("50 of 50");
      } finally {
        nats.resume();
      }
      Duration took = Duration.ofNanos(System.nanoTime() - started);
      assertThat(took).isGreaterThanOrEqualTo(PUBLISH_TIMEOUT).isLessThan(PUBLISH_TIMEOUT.plusSeconds(1));

      // The broker may still store what it received before it froze; the retry must not double it.
      publishEventually(publisher, events);
    }

    assertThat(messageCount()).isEqualTo(50);
    assertStoredInOrder(events);
  }

  @Test
  void aPublisherConnectsLazilyWhenNatsIsDownAtStart() throws Exception {
    nats = new NatsTestServer(); // not started

    long started = System.nanoTime();
    try (NatsPublisher publisher = NatsPublisher.connect(settings())) {
      assertThat(Duration.ofNanos(System.nanoTime() - started)).isLessThan(PUBLISH_TIMEOUT.plusSeconds(1));
      List<Outgoing> events = events(0, 5);
      assertThatThrownBy(() -> publisher.publish(events))
          .isInstanceOf(PublishException.class)
          .hasMessageContaining(nats.url());

      nats.start();
      publisher.publish(events);

      assertThat(streamConfig().getSubjects()).containsExactly("civicsync.>");
      assertStoredInOrder(events);

      publisher.close();
      assertThatThrownBy(() -> publisher.publish(events))
          .isInstanceOf(PublishException.class)
          .hasMessageContaining("closed");
    }
  }

  @Test
  void subjectTokensKeepOnlyLettersDigitsUnderscoresAndDashes() {
    assertThat(NatsPublisher.subjectToken("tenant-1_A")).isEqualTo("tenant-1_A");
    assertThat(NatsPublisher.subjectToken("a.b c*>/ü")).isEqualTo("a_b_c____");
    assertThat(NatsPublisher.subjectToken("")).isEqualTo("_");
  }

  @Test
  void settingsRefuseADuplicateWindowLongerThanTheMaxAge() {
    assertThatThrownBy(
            () -> new NatsSettings("nats://x:1", "S", List.of("a.>"), Duration.ofMinutes(1), Duration.ofMinutes(2), 1, PUBLISH_TIMEOUT))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("duplicateWindow");
    NatsSettings defaults = NatsSettings.defaults("nats://127.0.0.1:4222");
    assertThat(defaults.streamName()).isEqualTo("CIVICSYNC");
    assertThat(defaults.subjects()).containsExactly("civicsync.>");
    assertThat(defaults.maxAge()).isEqualTo(Duration.ofDays(30));
    assertThat(defaults.duplicateWindow()).isEqualTo(Duration.ofMinutes(10));
  }

  // --- helpers ---

  private static List<Outgoing> events(int from, int count) {
    List<Outgoing> events = new ArrayList<>(count);
    for (int i = from; i < from + count; i++) {
      String subject =
          "civicsync."
              + NatsPublisher.subjectToken("tenant." + (i % 3))
              + "."
              + NatsPublisher.subjectToken("notes")
              + ".upsert";
      UUID id = UUID.nameUUIDFromBytes(("event-" + i).getBytes(UTF_8));
      events.add(new Outgoing(subject, id, ("{\"n\":" + i + "}").getBytes(UTF_8)));
    }
    return events;
  }

  private static void publishEventually(NatsPublisher publisher, List<Outgoing> events) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
    while (true) {
      try {
        publisher.publish(events);
        return;
      } catch (PublishException e) {
        if (System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(100);
      }
    }
  }

  private Connection admin() throws Exception {
    return Nats.connect(nats.url());
  }

  private StreamConfiguration streamConfig() throws Exception {
    try (Connection conn = admin()) {
      return conn.jetStreamManagement().getStreamInfo(STREAM).getConfiguration();
    }
  }

  private long messageCount() throws Exception {
    try (Connection conn = admin()) {
      return conn.jetStreamManagement().getStreamInfo(STREAM).getStreamState().getMsgCount();
    }
  }

  /** The stream holds exactly {@code expected}, in order, from sequence 1, with ids and headers. */
  private void assertStoredInOrder(List<Outgoing> expected) throws Exception {
    try (Connection conn = admin()) {
      JetStreamManagement jsm = conn.jetStreamManagement();
      assertThat(jsm.getStreamInfo(STREAM).getStreamState().getLastSequence()).isEqualTo(expected.size());
      for (int i = 0; i < expected.size(); i++) {
        Outgoing event = expected.get(i);
        MessageInfo stored = jsm.getMessage(STREAM, i + 1);
        assertThat(stored.getSubject()).isEqualTo(event.subject());
        assertThat(stored.getHeaders().getFirst("Nats-Msg-Id")).isEqualTo(event.eventId().toString());
        assertThat(stored.getHeaders().getFirst("Content-Type")).isEqualTo("application/json");
        assertThat(stored.getData()).isEqualTo(event.payload());
      }
    }
  }
}
