package org.civicsync.server.nats;

import io.nats.client.Connection;
import io.nats.client.ErrorListener;
import io.nats.client.JetStream;
import io.nats.client.JetStreamApiException;
import io.nats.client.JetStreamManagement;
import io.nats.client.JetStreamOptions;
import io.nats.client.Nats;
import io.nats.client.Options;
import io.nats.client.PublishOptions;
import io.nats.client.api.PublishAck;
import io.nats.client.api.RetentionPolicy;
import io.nats.client.api.StorageType;
import io.nats.client.api.StreamConfiguration;
import io.nats.client.api.StreamInfo;
import io.nats.client.impl.Headers;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import org.civicsync.server.events.EventPublisher;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Publishes domain events to a NATS JetStream stream.
 *
 * <p>Contract, on top of {@link EventPublisher}'s:
 *
 * <ul>
 *   <li>{@link #connect} never fails because NATS is unreachable: the server must start without
 *       its broker. It connects right away when it can, and otherwise on the next {@link #publish}
 *       (and again whenever the connection has been closed), so an unreachable broker shows up as
 *       a {@link PublishException} that the relay retries later.
 *   <li>Before the first publish on a connection, the stream named in the settings is created when
 *       missing (file storage, limits retention) or updated when its subjects, max age or duplicate
 *       window differ from the settings.
 *   <li>Every event is sent with {@code Nats-Msg-Id: <eventId>}, {@code Content-Type:
 *       application/json}, and the expectation that it lands in that stream. JetStream drops a
 *       message whose id it stored within the duplicate window and acknowledges it as a duplicate,
 *       which counts as success here.
 *   <li>A batch is sent in list order on one connection, which JetStream stores in that order.
 *       {@link #publish} returns when all are acknowledged, or throws once every one is either
 *       acknowledged, failed, or out of time ({@link NatsSettings#publishTimeout} for the whole
 *       batch).
 *   <li>It is safe to call from several threads; batches are sent one at a time. After {@link
 *       #close} every publish throws {@link PublishException}.
 * </ul>
 */
public final class NatsPublisher implements EventPublisher {
  private static final Logger log = LoggerFactory.getLogger(NatsPublisher.class);

  /** The name the relay's connection shows under in the NATS server's monitoring. */
  public static final String CONNECTION_NAME = "civicsync-relay";

  private static final int STREAM_NOT_FOUND = 10059;

  private final NatsSettings settings;
  private final PublishOptions publishOptions;
  private final ReentrantLock lock = new ReentrantLock();
  private Connection connection; // guarded by lock
  private boolean streamReady; // guarded by lock
  private boolean closed; // guarded by lock

  private NatsPublisher(NatsSettings settings) {
    this.settings = settings;
    this.publishOptions =
        PublishOptions.builder()
            .expectedStream(settings.streamName())
            .streamTimeout(settings.publishTimeout())
            .build();
  }

  /**
   * Returns a publisher for {@code settings}, connected and with its stream ensured when NATS is
   * reachable now; otherwise it logs a warning and connects on the first {@link #publish}.
   */
  public static NatsPublisher connect(NatsSettings settings) {
    NatsPublisher publisher = new NatsPublisher(Objects.requireNonNull(settings, "settings"));
    publisher.lock.lock();
    try {
      publisher.ready();
    } catch (PublishException e) {
      log.warn(
          "NATS JetStream at {} is not usable yet ({}); will connect when publishing",
          settings.url(),
          describe(e.getCause()));
    } finally {
      publisher.lock.unlock();
    }
    return publisher;
  }

  /**
   * Makes {@code s} usable as one token of a NATS subject: every character other than {@code
   * [A-Za-z0-9_-]} becomes {@code '_'}, and an empty string becomes {@code "_"}. Distinct inputs can
   * map to the same token ({@code "a.b"} and {@code "a_b"}), so subscribers should read the real
   * values from the payload and use the subject only to filter.
   */
  public static String subjectToken(String s) {
    if (s.isEmpty()) {
      return "_";
    }
    StringBuilder token = new StringBuilder(s.length());
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      boolean safe =
          (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '_'
              || c == '-';
      token.append(safe ? c : '_');
    }
    return token.toString();
  }

  @Override
  public void publish(List<Outgoing> events) throws PublishException {
    if (events.isEmpty()) {
      return;
    }
    lock.lock();
    try {
      JetStream js = ready();
      long deadline = System.nanoTime() + settings.publishTimeout().toNanos();
      List<CompletableFuture<PublishAck>> acks = new ArrayList<>(events.size());
      for (Outgoing event : events) {
        acks.add(send(js, event));
      }
      Throwable failure = null;
      int failed = 0;
      for (CompletableFuture<PublishAck> ack : acks) {
        try {
          ack.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
          failed++;
          failure = failure == null ? e.getCause() : failure;
        } catch (CancellationException e) {
          // jnats cancels the futures of requests still open when their connection closes.
          failed++;
          failure = failure == null ? e : failure;
        } catch (TimeoutException e) {
          failed++;
          failure =
              failure == null
                  ? new TimeoutException("no acknowledgement within " + settings.publishTimeout())
                  : failure;
          ack.cancel(false);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          acks.forEach(a -> a.cancel(false));
          throw new PublishException("interrupted while waiting for NATS acknowledgements", e);
        }
      }
      if (failure != null) {
        // The stream may have been deleted or the broker replaced; check it again next time.
        streamReady = false;
        throw new PublishException(
            failed + " of " + events.size() + " events were not acknowledged by NATS: " + describe(failure),
            failure);
      }
    } finally {
      lock.unlock();
    }
  }

  private CompletableFuture<PublishAck> send(JetStream js, Outgoing event) {
    Headers headers = new Headers();
    headers.put("Nats-Msg-Id", event.eventId().toString());
    headers.put("Content-Type", "application/json");
    try {
      return js.publishAsync(event.subject(), headers, event.payload(), publishOptions);
    } catch (RuntimeException e) {
      // jnats refuses an invalid subject or a closed connection by throwing; count it like a nack
      // so the rest of the batch is still waited for.
      return CompletableFuture.failedFuture(e);
    }
  }

  /** Connects when needed and ensures the stream once per connection; call with the lock held. */
  private JetStream ready() throws PublishException {
    if (closed) {
      throw new PublishException("the NATS publisher is closed", new IllegalStateException("closed"));
    }
    if (connection != null && connection.getStatus() != Connection.Status.CONNECTED) {
      // Lost (jnats does not reconnect by itself here, see open()); start over on a fresh one.
      closeQuietly(connection);
      connection = null;
    }
    if (connection == null) {
      connection = open();
      streamReady = false;
    }
    JetStreamOptions jsOptions = JetStreamOptions.builder().requestTimeout(settings.publishTimeout()).build();
    try {
      if (!streamReady) {
        ensureStream(connection.jetStreamManagement(jsOptions));
        streamReady = true;
      }
      return connection.jetStream(jsOptions);
    } catch (IOException | JetStreamApiException | RuntimeException e) {
      throw new PublishException(
          "could not set up JetStream stream " + settings.streamName() + ": " + describe(e), e);
    }
  }

  private Connection open() throws PublishException {
    Options options =
        new Options.Builder()
            .server(settings.url())
            .connectionName(CONNECTION_NAME)
            .connectionTimeout(settings.publishTimeout())
            // No automatic reconnect: after reconnecting, jnats sends what it had queued on the lost
            // connection, which can be the tail of a batch whose head was lost. JetStream would store
            // that tail, and the relay's retry of the whole batch would then store the head after it,
            // out of order. A lost connection is instead closed with whatever it still held, and the
            // next publish opens a new one; on one connection only a prefix of a failed batch can
            // have been stored, which a retry of the batch extends in order.
            .noReconnect()
            .connectionListener(
                (conn, event) -> log.info("NATS connection to {}: {}", settings.url(), event))
            .errorListener(new QuietErrorListener(settings.url()))
            .build();
    try {
      return Nats.connect(options);
    } catch (IOException e) {
      throw new PublishException("could not connect to NATS at " + settings.url() + ": " + describe(e), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new PublishException("interrupted while connecting to NATS at " + settings.url(), e);
    }
  }

  private void ensureStream(JetStreamManagement jsm) throws IOException, JetStreamApiException {
    StreamInfo info;
    try {
      info = jsm.getStreamInfo(settings.streamName());
    } catch (JetStreamApiException e) {
      if (e.getApiErrorCode() != STREAM_NOT_FOUND) {
        throw e;
      }
      jsm.addStream(
          StreamConfiguration.builder()
              .name(settings.streamName())
              .storageType(StorageType.File)
              .retentionPolicy(RetentionPolicy.Limits)
              .subjects(settings.subjects())
              .maxAge(settings.maxAge())
              .duplicateWindow(settings.duplicateWindow())
              .replicas(settings.replicas())
              .build());
      log.info(
          "Created JetStream stream {} for {} (max age {}, duplicate window {}, replicas {})",
          settings.streamName(),
          settings.subjects(),
          settings.maxAge(),
          settings.duplicateWindow(),
          settings.replicas());
      return;
    }
    StreamConfiguration current = info.getConfiguration();
    List<String> changes = new ArrayList<>();
    if (!new HashSet<>(current.getSubjects()).equals(new HashSet<>(settings.subjects()))) {
      changes.add("subjects " + current.getSubjects() + " -> " + settings.subjects());
    }
    if (!current.getMaxAge().equals(settings.maxAge())) {
      changes.add("max age " + current.getMaxAge() + " -> " + settings.maxAge());
    }
    if (!current.getDuplicateWindow().equals(settings.duplicateWindow())) {
      changes.add("duplicate window " + current.getDuplicateWindow() + " -> " + settings.duplicateWindow());
    }
    if (current.getReplicas() != settings.replicas()) {
      // An operator may have scaled the stream on purpose; a default of 1 must not undo that.
      log.warn(
          "JetStream stream {} has {} replicas, settings say {}; leaving it as it is",
          settings.streamName(),
          current.getReplicas(),
          settings.replicas());
    }
    if (changes.isEmpty()) {
      return;
    }
    // Start from the current configuration so that anything an operator set beyond these stays.
    jsm.updateStream(
        StreamConfiguration.builder(current)
            .subjects(settings.subjects())
            .maxAge(settings.maxAge())
            .duplicateWindow(settings.duplicateWindow())
            .build());
    log.info("Updated JetStream stream {}: {}", settings.streamName(), String.join(", ", changes));
  }

  /** Drains the connection (waiting up to the publish timeout for what is in flight) and closes it. */
  @Override
  public void close() {
    lock.lock();
    try {
      closed = true;
      Connection conn = connection;
      connection = null;
      if (conn == null) {
        return;
      }
      try {
        if (conn.getStatus() == Connection.Status.CONNECTED) {
          conn.drain(settings.publishTimeout()).get(settings.publishTimeout().toMillis(), TimeUnit.MILLISECONDS);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      } catch (ExecutionException | TimeoutException | RuntimeException e) {
        log.debug("NATS drain did not finish cleanly: {}", describe(e));
      } finally {
        closeQuietly(conn);
      }
    } finally {
      lock.unlock();
    }
  }

  private static void closeQuietly(Connection conn) {
    try {
      conn.close();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /**
   * jnats' default listener logs every failed connection attempt and lost connection as SEVERE with a
   * stack trace through java.util.logging, once per relay retry while NATS is down. The relay already
   * reports the outage through its failed publishes and the connection listener logs the state
   * changes, so exceptions go to DEBUG; errors the server sends (-ERR, e.g. authorization) stay
   * visible.
   */
  private record QuietErrorListener(String url) implements ErrorListener {
    @Override
    public void errorOccurred(Connection conn, String error) {
      log.warn("NATS server at {} reported: {}", url, error);
    }

    @Override
    public void exceptionOccurred(Connection conn, Exception exp) {
      log.debug("NATS connection to {}: {}", url, describe(exp));
    }
  }

  private static String describe(Throwable t) {
    return t == null ? "unknown" : t.getClass().getSimpleName() + ": " + t.getMessage();
  }
}
