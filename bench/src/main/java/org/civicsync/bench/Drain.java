package org.civicsync.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.civicsync.client.CivicSyncClient;
import org.civicsync.client.transport.Transport;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.testing.Fixtures;
import org.civicsync.testing.link.FaultyLink;
import org.civicsync.testing.link.LinkProfile;
import org.civicsync.testing.link.LinkStats;

/**
 * Figure 4: a device drains an outbox of {@code n} changes through a slow, lossy link with the
 * Java SDK, retrying at once after each reset, against the limit of that link for the bytes that
 * had to cross. The link runs in compressed time (all rates and delays scaled by one factor).
 *
 * <p>The limit comes from a pass of the same work over loopback (a link with no delay and no
 * loss, which counts the bytes and requests): its bytes up over the up rate, plus its bytes down
 * over the down rate, plus one round trip per request it needed. Every pass drains the same
 * changes (the same seed) into a tenant of its own, so no pass meets another's records. The
 * measured drain is the time from the first request until the outbox is empty; the pull that
 * follows a drain (the device's own records coming back) is not part of it and is cut short.
 */
final class Drain {
  /** One drain and its limit, in compressed seconds. */
  record Result(String profile, double factor, int mutations, double seconds, double limitSeconds, long limitBytesUp, long limitBytesDown,
      int limitRequests, long lossyBytesUp, long lossyBytesDown, long resets, int attempts, long connections) {
    double ratio() {
      return seconds / limitSeconds;
    }
  }

  private Drain() {}

  /**
   * The lossy drain over {@code profile} scaled by {@code factor}, into {@code tenant}; its limit
   * from {@code loopback}, a pass of the same changes ({@code dataSeed}).
   */
  static Result run(Api api, String tenant, java.nio.file.Path work, LinkProfile profile, double factor, int n, int batchSize, long dataSeed,
      long linkSeed, Loopback loopback) throws Exception {
    LinkProfile scaled = profile.timeScale(factor);
    Pass lossy = pass(api, tenant, work, scaled, n, batchSize, dataSeed, linkSeed);
    double rtt = 2 * scaled.latency().toNanos() / 1e9;
    double limit = loopback.bytesUp() * 8.0 / scaled.upBitsPerSecond() + loopback.bytesDown() * 8.0 / scaled.downBitsPerSecond()
        + loopback.requests() * rtt;
    return new Result(profile.name(), factor, n, lossy.seconds, limit, loopback.bytesUp(), loopback.bytesDown(), loopback.requests(),
        lossy.bytesUp, lossy.bytesDown, lossy.resets, lossy.attempts, lossy.connections);
  }

  /**
   * The same work over loopback: what the device and the server themselves take, link aside, and
   * of that the time spent waiting for answers (the server's share plus loopback); and the bytes
   * and requests every drain of these changes has to get across.
   */
  record Loopback(double seconds, double requestSeconds, long bytesUp, long bytesDown, int requests) {}

  static Loopback loopback(Api api, String tenant, java.nio.file.Path work, int n, int batchSize, long dataSeed) throws Exception {
    Pass p = pass(api, tenant, work, LinkProfile.PERFECT, n, batchSize, dataSeed, dataSeed);
    return new Loopback(p.seconds, p.requestSeconds, p.bytesUp, p.bytesDown, p.requests);
  }

  private record Pass(double seconds, long bytesUp, long bytesDown, int requests, long resets, int attempts, double requestSeconds,
      long connections) {}

  /** Thrown by the counting transport to end a sync once the outbox is empty. */
  private static final class Drained extends IOException {
    Drained() {
      super("drained");
    }
  }

  private static Pass pass(Api api, String tenant, java.nio.file.Path work, LinkProfile profile, int n, int batchSize, long seed,
      long linkSeed) throws Exception {
    api.tenant(tenant);
    String code = api.admin("POST", "/v1/admin/tenants/" + tenant + "/enrollment-codes", "{\"userId\":\"clerk\"}").get("code").asText();
    Transport direct = new UrlConnectionTransport(api.base());
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", api.base().getPort()), profile, linkSeed)) {
      Transport slow = new UrlConnectionTransport(link.uri(), Duration.ofSeconds(30), Duration.ofMinutes(10));
      Transport[] via = {direct};
      AtomicInteger requests = new AtomicInteger();
      AtomicLong lastPush = new AtomicLong();
      AtomicLong first = new AtomicLong();
      AtomicLong inRequests = new AtomicLong();
      CivicSyncClient[] self = new CivicSyncClient[1];
      Transport counting = r -> {
        if (via[0] == slow && r.path().startsWith("/v1/sync/pull") && self[0].status().pending() == 0) {
          throw new Drained();
        }
        first.compareAndSet(0, System.nanoTime());
        long t0 = System.nanoTime();
        Transport.Response resp = via[0].send(r);
        if (via[0] == slow) {
          inRequests.addAndGet(System.nanoTime() - t0);
        }
        if (via[0] == slow) {
          requests.incrementAndGet();
          if (r.path().startsWith("/v1/sync/push")) {
            lastPush.set(System.nanoTime());
          }
        }
        return resp;
      };
      // The device's store as on a phone: SQLite on disk.
      java.nio.file.Files.createDirectories(work);
      java.nio.file.Path db = work.resolve("device-" + seed + "-" + System.nanoTime() + ".db");
      CivicSyncClient c = CivicSyncClient.builder().store(org.civicsync.client.store.sqlite.SqliteLocalStore.open(db)).transport(counting)
          .random(new Random(seed))
          .batchSize(batchSize).build();
      self[0] = c;
      c.enroll(code, "field tablet " + seed);
      c.sync();
      Fixtures fx = new Fixtures(seed);
      var appts = c.collection("appointments");
      for (int i = 0; i < n; i++) {
        appts.create(fx.appointment());
      }
      via[0] = slow;
      first.set(0);
      inRequests.set(0);
      int attempts = 0;
      // Until a sync gets through its pushes. The loop does not ask the client for its status
      // between attempts: with 10,000 changes queued that walk of the outbox took about 0.2 s, and
      // it was the harness's time, charged to the drain at every reset.
      while (true) {
        attempts++;
        try {
          c.sync();
          break;
        } catch (Drained done) {
          break;
        } catch (IOException reset) {
          // A reset on a lossy link: try again at once, as a device with signal would.
        }
        if (attempts > 100_000) {
          throw new IllegalStateException("the outbox did not drain");
        }
      }
      if (c.status().pending() > 0) {
        throw new IllegalStateException("a sync completed with changes still pending");
      }
      double seconds = (lastPush.get() - first.get()) / 1e9;
      LinkStats s = link.stats();
      long resets = s.totalFaults();
      c.close();
      return new Pass(seconds, s.bytesUp(), s.bytesDown(), requests.get(), resets, attempts, inRequests.get() / 1e9, s.connections());
    }
  }
}
