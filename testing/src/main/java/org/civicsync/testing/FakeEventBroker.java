package org.civicsync.testing;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicInteger;
import org.civicsync.server.events.EventPublisher;

/**
 * An in-memory broker with JetStream's two promises that the relay relies on: what it
 * acknowledged it keeps, and a message whose id it already holds is dropped. It can be told to
 * refuse the next publishes (a broker that is down) or to publish and then fail before answering
 * (a relay that dies between publishing and marking).
 */
public final class FakeEventBroker {
  private final Map<UUID, EventPublisher.Outgoing> stored = new LinkedHashMap<>();
  private final AtomicInteger refuse = new AtomicInteger();
  private final AtomicInteger loseAnswers = new AtomicInteger();
  private int duplicatesDropped;

  /** The next {@code n} publish calls fail without storing anything. */
  public void refuseNext(int n) {
    refuse.set(n);
  }

  /** The next {@code n} publish calls store everything, then fail as if the answer was lost. */
  public void loseAnswerOfNext(int n) {
    loseAnswers.set(n);
  }

  /** What the broker holds, in the order it first stored it. */
  public synchronized List<EventPublisher.Outgoing> stored() {
    return new ArrayList<>(stored.values());
  }

  public synchronized int duplicatesDropped() {
    return duplicatesDropped;
  }

  /** A publisher connected to this broker. */
  public EventPublisher publisher() {
    return new EventPublisher() {
      @Override
      public void publish(List<Outgoing> events) throws PublishException {
        if (refuse.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
          throw new PublishException("broker unavailable", null);
        }
        synchronized (FakeEventBroker.this) {
          for (Outgoing e : events) {
            if (stored.putIfAbsent(e.eventId(), e) != null) {
              duplicatesDropped++;
            }
          }
        }
        if (loseAnswers.getAndUpdate(n -> Math.max(0, n - 1)) > 0) {
          throw new PublishException("acknowledgement lost", null);
        }
      }

      @Override
      public void close() {
      }
    };
  }
}
