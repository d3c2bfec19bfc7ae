package org.civicsync.bench;

import java.net.InetSocketAddress;
import java.net.URI;
import java.util.List;
import java.util.zip.Deflater;
import org.civicsync.client.transport.ServerApi;
import org.civicsync.client.transport.UrlConnectionTransport;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.testing.link.FaultyLink;
import org.civicsync.testing.link.LinkProfile;
import org.civicsync.testing.link.LinkStats;

/**
 * Figure 3: the bytes that cross the wire per mutation — requests and responses, HTTP headers
 * included, counted by a pass-through proxy — against the gzip size (at gzip's default level, 6)
 * of the same mutations' JSON. The batches go as the Java SDK sends them: through its {@link
 * ServerApi} and {@link UrlConnectionTransport}, so the figure is the SDK's encoding (its gzip level,
 * its {@code Prefer: return=minimal}), not one the benchmark chose.
 */
final class Wire {
  /**
   * What crossed for a sample of batches.
   *
   * @param gzip9OfMutations the same JSON at gzip's strongest level (9), for reference
   */
  record Sample(int mutations, long bytesUp, long bytesDown, long gzipOfMutations, long rawOfMutations, long gzip9OfMutations) {
    double perMutation() {
      return (bytesUp + bytesDown) / (double) mutations;
    }

    double gzipPerMutation() {
      return gzipOfMutations / (double) mutations;
    }
  }

  private Wire() {}

  static Sample measure(URI server, List<Workload.Batch> batches) throws Exception {
    try (FaultyLink link = FaultyLink.start(new InetSocketAddress("127.0.0.1", server.getPort()), LinkProfile.PERFECT, 1)) {
      ServerApi viaLink = new ServerApi(new UrlConnectionTransport(link.uri()));
      long gzip = 0;
      long gzip9 = 0;
      long raw = 0;
      int n = 0;
      for (Workload.Batch b : batches) {
        PushResponse r = viaLink.push(b.device().token(), new PushRequest(b.mutations()));
        if (!r.results().stream().allMatch(x -> x.status() == MutationStatus.APPLIED)) {
          throw new IllegalStateException("a wire sample's push was not applied whole");
        }
        // The same mutations' JSON, without the request's wrapping.
        byte[] mutations = Workload.json(b.mutations());
        raw += mutations.length;
        gzip += Api.gzip(mutations).length;
        gzip9 += gzip9(mutations);
        n += b.mutations().size();
      }
      Thread.sleep(200); // the link counts a connection's bytes as they pass; let the last ones land
      LinkStats s = link.stats();
      return new Sample(n, s.bytesUp(), s.bytesDown(), gzip, raw, gzip9);
    }
  }

  private static long gzip9(byte[] raw) {
    Deflater d = new Deflater(Deflater.BEST_COMPRESSION, true);
    try {
      d.setInput(raw);
      d.finish();
      byte[] buf = new byte[raw.length + 64];
      long n = 0;
      while (!d.finished()) {
        n += d.deflate(buf);
      }
      return n + 18; // gzip's header and trailer
    } finally {
      d.end();
    }
  }
}
