package org.civicsync.server.nats;

import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * How {@link NatsPublisher} reaches NATS and which JetStream stream it keeps the events in.
 *
 * @param url the NATS server, e.g. {@code nats://127.0.0.1:4222}
 * @param streamName the JetStream stream the events are stored in (default {@value
 *     #DEFAULT_STREAM_NAME})
 * @param subjects the subjects the stream captures (default {@value #DEFAULT_SUBJECTS}); every
 *     subject the relay publishes on must match one of them
 * @param maxAge how long the stream keeps an event (default 30 days); {@link Duration#ZERO} keeps
 *     events until other limits remove them
 * @param duplicateWindow how long JetStream remembers a {@code Nats-Msg-Id} and drops a message
 *     re-published with it (default 10 minutes). Deduplication is only as good as this window: it
 *     must be at least as long as the relay can take between first publishing an event and its last
 *     retry of it (its longest backoff plus one publish timeout), or a late retry is stored a second
 *     time. JetStream requires it to be no longer than {@code maxAge} when {@code maxAge} is set.
 * @param replicas how many copies a JetStream cluster keeps (default 1); used when the stream is
 *     created, an existing stream's replicas are left as found
 * @param publishTimeout how long one {@link NatsPublisher#publish} waits, overall, for the broker to
 *     acknowledge a batch, and how long connecting and stream management requests may take (default
 *     5 s)
 */
public record NatsSettings(
    String url,
    String streamName,
    List<String> subjects,
    Duration maxAge,
    Duration duplicateWindow,
    int replicas,
    Duration publishTimeout) {

  public static final String DEFAULT_STREAM_NAME = "CIVICSYNC";
  public static final String DEFAULT_SUBJECTS = "civicsync.>";
  public static final Duration DEFAULT_MAX_AGE = Duration.ofDays(30);
  public static final Duration DEFAULT_DUPLICATE_WINDOW = Duration.ofMinutes(10);
  public static final Duration DEFAULT_PUBLISH_TIMEOUT = Duration.ofSeconds(5);

  public NatsSettings {
    Objects.requireNonNull(url, "url");
    Objects.requireNonNull(streamName, "streamName");
    Objects.requireNonNull(maxAge, "maxAge");
    Objects.requireNonNull(duplicateWindow, "duplicateWindow");
    Objects.requireNonNull(publishTimeout, "publishTimeout");
    subjects = List.copyOf(subjects);
    if (url.isBlank()) {
      throw new IllegalArgumentException("url is blank");
    }
    // JetStream refuses these in stream names; failing here names the setting at fault.
    if (streamName.isEmpty() || !streamName.chars().allMatch(c -> c > ' ' && ".*>/\\".indexOf(c) < 0)) {
      throw new IllegalArgumentException("streamName must be non-empty without spaces, '.', '*', '>', '/' or '\\': " + streamName);
    }
    if (subjects.isEmpty() || subjects.stream().anyMatch(String::isBlank)) {
      throw new IllegalArgumentException("subjects must be non-empty and not blank: " + subjects);
    }
    if (maxAge.isNegative()) {
      throw new IllegalArgumentException("maxAge is negative: " + maxAge);
    }
    // Zero would let the server pick its own default (2 minutes), hiding the real window.
    if (duplicateWindow.isNegative() || duplicateWindow.isZero()) {
      throw new IllegalArgumentException("duplicateWindow must be positive: " + duplicateWindow);
    }
    if (!maxAge.isZero() && duplicateWindow.compareTo(maxAge) > 0) {
      throw new IllegalArgumentException(
          "duplicateWindow " + duplicateWindow + " is longer than maxAge " + maxAge + "; JetStream refuses that");
    }
    if (replicas < 1 || replicas > 5) {
      throw new IllegalArgumentException("replicas must be 1..5: " + replicas);
    }
    if (publishTimeout.isNegative() || publishTimeout.isZero()) {
      throw new IllegalArgumentException("publishTimeout must be positive: " + publishTimeout);
    }
  }

  /** The defaults for everything but the server's {@code url}. */
  public static NatsSettings defaults(String url) {
    return new NatsSettings(
        url,
        DEFAULT_STREAM_NAME,
        List.of(DEFAULT_SUBJECTS),
        DEFAULT_MAX_AGE,
        DEFAULT_DUPLICATE_WINDOW,
        1,
        DEFAULT_PUBLISH_TIMEOUT);
  }
}
