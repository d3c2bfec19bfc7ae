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
 * ServerApi} and {@link UrlConnectionTransport}, so the figure is the SDK's encoding (its coding and
 * level, its {@code Prefer: return=minimal}), not one the benchmark chose. The first batch is sent
 * and not counted: it teaches the transport the codings the server takes (zstd, when zstd-jni is on
 * the class path, as it is here).
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
      LinkStats start = null;
      for (Workload.Batch b : batches) {
        PushResponse r = viaLink.push(b.device().token(), new PushRequest(b.mutations()));
        if (!r.results().stream().allMatch(x -> x.status() == MutationStatus.APPLIED)) {
          throw new IllegalStateException("a wire sample's push was not applied whole");
        }
        if (start == null) {
          // The first push teaches the transport which codings the server takes (a device learns it
          // from its first exchange of a sync, the definitions' 304): it is not counted.
          Thread.sleep(200);
          start = link.stats();
          continue;
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
      return new Sample(n, s.bytesUp() - start.bytesUp(), s.bytesDown() - start.bytesDown(), gzip, raw, gzip9);
    }
  }

  /**
   * What zstd would make of the same mutations' JSON (per mutation, in bytes), in the SDK's batches
   * of 500 and in the 2G drain's batches of 100: at zstd's level 19 alone, and with a dictionary
   * of {@code dictBytes} trained on other mutations of the same collection ({@code training}, from
   * other devices and other records), as RFC 9842's {@code dcz} would carry it (its 40-byte header
   * included). gzip at level 9, what the SDK sends, is beside them for the same batches.
   */
  record Zstd(int dictBytes, int trainingMutations, double gzip9Per500, double zstdPer500, double dictPer500, double gzip9Per100,
      double zstdPer100, double dictPer100) {}

  static Zstd zstd(List<Workload.Batch> sample, List<org.civicsync.contracts.Mutation> training, int dictBytes) {
    com.github.luben.zstd.ZstdDictTrainer trainer = new com.github.luben.zstd.ZstdDictTrainer(64 << 20, dictBytes);
    for (org.civicsync.contracts.Mutation m : training) {
      trainer.addSample(Workload.json(m));
    }
    byte[] dict;
    try {
      dict = trainer.trainSamples();
    } catch (RuntimeException tooFew) {
      // zstd's trainer refuses too small a sample (the smoke run's): no dictionary, then.
      dict = new byte[0];
    }
    try (com.github.luben.zstd.ZstdCompressCtx plain = new com.github.luben.zstd.ZstdCompressCtx();
        com.github.luben.zstd.ZstdCompressCtx withDict = new com.github.luben.zstd.ZstdCompressCtx()) {
      plain.setLevel(19);
      withDict.setLevel(19);
      if (dict.length > 0) {
        withDict.loadDict(dict);
      }
      double[] per500 = sizes(sample, 500, plain, withDict);
      double[] per100 = sizes(sample, 100, plain, withDict);
      return new Zstd(dict.length, training.size(), per500[0], per500[1], per500[2], per100[0], per100[1], per100[2]);
    }
  }

  /** gzip-9, zstd-19 and dcz bytes per mutation of the sample cut into batches of {@code size}. */
  private static double[] sizes(List<Workload.Batch> sample, int size, com.github.luben.zstd.ZstdCompressCtx plain,
      com.github.luben.zstd.ZstdCompressCtx withDict) {
    long g = 0;
    long z = 0;
    long d = 0;
    int n = 0;
    for (Workload.Batch b : sample) {
      for (int from = 0; from < b.mutations().size(); from += size) {
        List<org.civicsync.contracts.Mutation> part = b.mutations().subList(from, Math.min(from + size, b.mutations().size()));
        byte[] json = Workload.json(part);
        g += gzip9(json);
        z += plain.compress(json).length;
        d += withDict.compress(json).length + 40; // dcz: an 8-byte magic and the dictionary's SHA-256
        n += part.size();
      }
    }
    return new double[] {g / (double) n, z / (double) n, d / (double) n};
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
