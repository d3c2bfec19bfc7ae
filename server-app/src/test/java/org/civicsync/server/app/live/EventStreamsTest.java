package org.civicsync.server.app.live;

import static org.assertj.core.api.Assertions.assertThat;

import jakarta.servlet.ServletOutputStream;
import jakarta.servlet.WriteListener;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.server.realtime.StreamHub;
import org.civicsync.server.store.CommitNotice;
import org.civicsync.server.store.DeviceRow;
import org.civicsync.server.store.TenantRow;
import org.civicsync.server.tenancy.Access;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.testing.InMemoryServerStore;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The live streams' writing, against a fake servlet output that says when it can take more: what
 * a stream writes, in which order, and what it does when its connection cannot keep up or breaks.
 */
class EventStreamsTest {
  private static final String TENANT = "t1";
  private final InMemoryServerStore store = new InMemoryServerStore();
  private final StreamHub hub;
  private final EventStreams streams;

  EventStreamsTest() {
    store.createTenant(new TenantRow(TENANT, Instant.now()));
    hub = new StreamHub(store, CollectionCatalog.of(CollectionCatalog.builtInDefinitions()));
    streams = new EventStreams(hub, Duration.ofHours(1));
  }

  @AfterEach
  void close() {
    streams.close();
  }

  /**
   * A servlet output in non-blocking mode, as the container's behaves: a write or flush is allowed
   * only after {@link #isReady()} said true (and not again until it says so again); when it said
   * false, the listener's {@code onWritePossible} is owed once the output can take more.
   */
  static final class FakeOutput extends ServletOutputStream {
    final List<String> writes = new CopyOnWriteArrayList<>();
    private boolean ready = true;
    private boolean mayWrite;
    private boolean owed;
    private boolean broken;
    private WriteListener listener;

    @Override
    public synchronized boolean isReady() {
      mayWrite = ready;
      owed |= !ready;
      return ready;
    }

    @Override
    public void setWriteListener(WriteListener l) {
      listener = l;
    }

    @Override
    public synchronized void write(int b) {
      throw new AssertionError("events are written whole");
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
      use();
      writes.add(new String(b, off, len, StandardCharsets.UTF_8));
    }

    @Override
    public synchronized void flush() throws IOException {
      use();
    }

    private void use() throws IOException {
      assertThat(mayWrite).as("written only after isReady() said true").isTrue();
      mayWrite = false;
      if (broken) {
        throw new IOException("Broken pipe");
      }
    }

    /** The device stops reading: the output takes nothing more for now. */
    synchronized void stall() {
      ready = false;
    }

    /** The device read again: the output can take more, and says so if it was asked. */
    void drain() throws IOException {
      boolean call;
      synchronized (this) {
        ready = true;
        call = owed;
        owed = false;
      }
      if (call) {
        listener.onWritePossible();
      }
    }

    synchronized void breakConnection() {
      broken = true;
    }

    List<String> events() {
      return writes.stream().filter(w -> w.startsWith("event:") || w.startsWith("retry:")).toList();
    }
  }

  private static Caller.Device device() {
    UUID id = UUID.randomUUID();
    return new Caller.Device(new DeviceRow(id, TENANT, "tab", null, "hash", Instant.now(), null, null, DeviceRow.DEVICE, "u1", null, null),
        Access.backOffice());
  }

  private void commit(long head) {
    store.write(TENANT, tx -> {
      tx.announce(CommitNotice.everything(TENANT, head));
      return null;
    });
  }

  private void revoke(Caller.Device d, long head) {
    store.write(TENANT, tx -> {
      tx.announce(new CommitNotice(TENANT, head, Set.of(), Set.of(), Set.of(d.deviceId()), true));
      return null;
    });
  }

  private static long id(String event) {
    return Long.parseLong(event.lines().filter(l -> l.startsWith("id: ")).findFirst().orElseThrow().substring(4));
  }

  @Test
  void aStreamOpensWithReadyAtTheHeadThenWritesEachChangeAsItCommits() {
    FakeOutput out = new FakeOutput();
    streams.serve(device(), -1, () -> 5, out);
    commit(6);
    commit(7);
    assertThat(out.events()).hasSize(3);
    assertThat(out.events().get(0)).startsWith("retry: 3000\nevent: ready\nid: 5\n").doesNotContain("committedAt");
    assertThat(out.events().subList(1, 3)).allSatisfy(e -> assertThat(e).startsWith("event: changes\n").contains("\"committedAt\":\""));
    assertThat(out.events().subList(1, 3)).extracting(EventStreamsTest::id).containsExactly(6L, 7L);
  }

  @Test
  void everyOneOfManyStreamsHearsEachCommitOnceAndInOrder() {
    // Enough streams that a commit is told on every core.
    List<FakeOutput> outs = new java.util.ArrayList<>();
    for (int i = 0; i < 600; i++) {
      FakeOutput out = new FakeOutput();
      streams.serve(device(), -1, () -> 5, out);
      outs.add(out);
    }
    for (long head = 6; head <= 8; head++) {
      commit(head);
    }
    assertThat(outs).allSatisfy(o -> assertThat(o.events()).extracting(EventStreamsTest::id).containsExactly(5L, 6L, 7L, 8L));
  }

  @Test
  void aDeviceWhoseLastEventIdIsBehindTheHeadHearsOfChangesAtOnce() {
    FakeOutput behind = new FakeOutput();
    FakeOutput current = new FakeOutput();
    streams.serve(device(), 3, () -> 5, behind);
    streams.serve(device(), 5, () -> 5, current);
    assertThat(behind.events().get(0)).contains("event: changes\nid: 5\n");
    assertThat(current.events().get(0)).contains("event: ready\nid: 5\n");
  }

  @Test
  void aCommitDispatchedWhileTheStreamOpensIsNotMissed() {
    FakeOutput out = new FakeOutput();
    // The head is read as 5; commit 6 is dispatched before the stream has written anything.
    streams.serve(device(), -1, () -> {
      commit(6);
      return 5;
    }, out);
    assertThat(out.events()).extracting(EventStreamsTest::id).containsExactly(5L, 6L);

    FakeOutput later = new FakeOutput();
    // Here the commit is in the head read: it is not told twice.
    streams.serve(device(), -1, () -> {
      commit(7);
      return 7;
    }, later);
    assertThat(later.events()).extracting(EventStreamsTest::id).containsExactly(7L);
  }

  @Test
  void aConnectionThatCannotKeepUpGetsOnlyTheNewestChangeOnceItCanAndHoldsBackNoOtherStream() throws Exception {
    FakeOutput slow = new FakeOutput();
    FakeOutput fast = new FakeOutput();
    streams.serve(device(), -1, () -> 5, slow);
    streams.serve(device(), -1, () -> 5, fast);
    slow.stall();
    for (long head = 6; head <= 9; head++) {
      commit(head);
    }
    assertThat(fast.events()).extracting(EventStreamsTest::id).containsExactly(5L, 6L, 7L, 8L, 9L);
    assertThat(slow.events()).extracting(EventStreamsTest::id).containsExactly(5L);
    slow.drain();
    assertThat(slow.events()).extracting(EventStreamsTest::id).as("the changes in between are folded into the newest").containsExactly(5L, 9L);
  }

  @Test
  void anIdleStreamGetsHeartbeats() throws Exception {
    try (EventStreams quick = new EventStreams(new StreamHub(store, CollectionCatalog.of(List.of())), Duration.ofMillis(40))) {
      FakeOutput out = new FakeOutput();
      quick.serve(device(), -1, () -> 5, out);
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (out.writes.stream().filter(": heartbeat\n\n"::equals).count() < 2 && System.nanoTime() < deadline) {
        Thread.sleep(5);
      }
      assertThat(out.writes.stream().filter(": heartbeat\n\n"::equals).count()).isGreaterThanOrEqualTo(2);
    }
  }

  @Test
  void aBrokenConnectionEndsItsStreamAndItsRequest() {
    FakeOutput out = new FakeOutput();
    CompletableFuture<Void> done = streams.serve(device(), -1, () -> 5, out);
    assertThat(hub.openStreams()).isEqualTo(1);
    out.breakConnection();
    commit(6);
    assertThat(done).isCompleted();
    assertThat(hub.openStreams()).isZero();
    assertThat(streams.open()).isZero();
  }

  @Test
  void revokingADeviceEndsItsStreamsOnly() {
    Caller.Device revoked = device();
    FakeOutput gone = new FakeOutput();
    FakeOutput staying = new FakeOutput();
    CompletableFuture<Void> goneDone = streams.serve(revoked, -1, () -> 5, gone);
    CompletableFuture<Void> stayingDone = streams.serve(device(), -1, () -> 5, staying);
    revoke(revoked, 6);
    assertThat(goneDone).isCompleted();
    assertThat(stayingDone).isNotDone();
    assertThat(gone.events()).as("nothing more after the revocation").extracting(EventStreamsTest::id).containsExactly(5L);
    assertThat(staying.events()).extracting(EventStreamsTest::id).containsExactly(5L, 6L);
  }

  @Test
  void aStreamWhoseHeadCannotBeReadIsNotOpened() {
    FakeOutput out = new FakeOutput();
    try {
      streams.serve(device(), -1, () -> {
        throw new IllegalStateException("store down");
      }, out);
    } catch (IllegalStateException expected) {
      // the request answers with the error
    }
    assertThat(out.writes).isEmpty();
    assertThat(hub.openStreams()).isZero();
  }

  @Test
  void closingEndsEveryStream() {
    CompletableFuture<Void> a = streams.serve(device(), -1, () -> 5, new FakeOutput());
    CompletableFuture<Void> b = streams.serve(device(), -1, () -> 5, new FakeOutput());
    streams.close();
    assertThat(a).isCompleted();
    assertThat(b).isCompleted();
    assertThat(streams.open()).isZero();
  }
}
