package org.civicsync.bench;

import java.net.http.HttpResponse;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Figure 1's load: every device sends its batches one after another over HTTP, all devices at
 * once, as a day's backlog arrives at a district server.
 */
final class Ingest {
  /** What one pass of the workload did. */
  record Pass(int mutations, double seconds, long applied, long replayed, long other, long requestBytes, long responseBytes) {
    double perSecond() {
      return mutations / seconds;
    }
  }

  private Ingest() {}

  static Pass run(Api api, Workload w) throws Exception {
    return run(api, w, () -> {});
  }

  /**
   * The same, calling {@code halfway} once, on the device thread whose answer completed the first
   * half of all the workload's pushes (the others keep pushing meanwhile).
   */
  static Pass run(Api api, Workload w, Runnable halfway) throws Exception {
    int total = w.perDevice.stream().mapToInt(java.util.List::size).sum();
    java.util.concurrent.atomic.AtomicInteger answered = new java.util.concurrent.atomic.AtomicInteger();
    AtomicLong applied = new AtomicLong();
    AtomicLong replayed = new AtomicLong();
    AtomicLong other = new AtomicLong();
    AtomicLong reqBytes = new AtomicLong();
    AtomicLong respBytes = new AtomicLong();
    double seconds = Workers.run(w.perDevice.size(), false, "a device's push", device -> {
      for (Workload.Batch b : w.perDevice.get(device)) {
        HttpResponse<byte[]> r = api.push(b.device(), b.gzipped());
        if (r.statusCode() != 200) {
          throw new IllegalStateException("push answered " + r.statusCode() + ": " + new String(r.body(), java.nio.charset.StandardCharsets.UTF_8));
        }
        reqBytes.addAndGet(b.gzipped().length);
        respBytes.addAndGet(r.body().length);
        String body = new String(r.headers().firstValue("Content-Encoding").filter("gzip"::equals).isPresent()
            ? Api.gunzip(r.body()) : r.body(), java.nio.charset.StandardCharsets.UTF_8);
        int a = count(body, "\"status\":\"applied\"");
        int rp = count(body, "\"replayed\":true");
        applied.addAndGet(rp > 0 ? 0 : a);
        replayed.addAndGet(rp);
        other.addAndGet(b.mutations().size() - (rp > 0 ? rp : a));
        if (answered.incrementAndGet() == total / 2) {
          halfway.run();
        }
      }
    });
    return new Pass(w.mutations, seconds, applied.get(), replayed.get(), other.get(), reqBytes.get(), respBytes.get());
  }

  static int count(String s, String needle) {
    int n = 0;
    for (int i = s.indexOf(needle); i >= 0; i = s.indexOf(needle, i + needle.length())) {
      n++;
    }
    return n;
  }
}
