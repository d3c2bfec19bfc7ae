package org.civicsync.bench;

import java.net.InetSocketAddress;
import java.net.URI;
import java.util.List;
import org.civicsync.testing.link.FaultyLink;
import org.civicsync.testing.link.LinkProfile;
import org.civicsync.testing.link.LinkStats;

/**
 * Figure 3: the bytes that cross the wire per mutation — requests and responses, HTTP headers
 * included, counted by a pass-through proxy — against the gzip size of the same mutations' JSON.
 */
final class Wire {
  /** What crossed for a sample of batches. */
  record Sample(int mutations, long bytesUp, long bytesDown, long gzipOfMutations, long rawOfMutations) {
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
      Api viaLink = new Api(link.uri());
      long gzip = 0;
      long raw = 0;
      int n = 0;
      for (Workload.Batch b : batches) {
        var r = viaLink.push(b.device(), b.gzipped());
        if (r.statusCode() != 200) {
          throw new IllegalStateException("push answered " + r.statusCode());
        }
        // The same mutations' JSON, without the request's wrapping, compressed the same way.
        byte[] mutations = Workload.json(b.mutations());
        raw += mutations.length;
        gzip += Api.gzip(mutations).length;
        n += b.mutations().size();
      }
      Thread.sleep(200); // the link counts a connection's bytes as they pass; let the last ones land
      LinkStats s = link.stats();
      return new Sample(n, s.bytesUp(), s.bytesDown(), gzip, raw);
    }
  }
}
