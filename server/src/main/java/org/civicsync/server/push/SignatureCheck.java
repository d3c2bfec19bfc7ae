package org.civicsync.server.push;

import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.math.ec.rfc8032.Ed25519.PublicPoint;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;

/**
 * Checks mutations' Ed25519 signatures on the push path with Bouncy Castle's RFC 8032 code and each
 * device's public point decoded once, and a push's signatures together ({@link Ed25519Batch}). The
 * JDK's provider (what {@link Envelopes#verify} uses, and devices' own code) took about 600 µs per
 * check on the 2-core machines this runs on, Bouncy Castle 66–80 µs, a push of 500 checked as one
 * batch about 21 µs each (bench's {@code HotPaths}). A batch only ever answers "all valid"; when it
 * does not, its halves are checked again, down to Bouncy Castle's single checks, which decide. Both
 * use RFC 8032's cofactored equation ({@code Ed25519BatchTest}); {@code SignatureCheckTest} runs the
 * contract's vectors and random forgeries through this and the JDK.
 */
public final class SignatureCheck {
  // Devices' keys are few and long-lived; the bound only keeps a misbehaving tenant from growing it.
  private static final int MAX_KEYS = 100_000;
  // Below this a batch saves too little over single checks to be worth its fixed cost.
  private static final int MIN_BATCH = 4;

  private record Keys(PublicPoint point, Ed25519Batch.Key batch) {}

  private final ConcurrentHashMap<String, Optional<Keys>> keys = new ConcurrentHashMap<>();

  /** Whether {@code m} carries a valid signature of this tenant's device holding {@code key}. */
  public boolean verify(Mutation m, String tenantId, UUID deviceId, Ed25519.PublicKey key) {
    byte[] canonical = org.civicsync.core.canonical.Jcs.canonicalBytes(Envelopes.unsigned(m));
    return verifyAll(java.util.List.of(m), new byte[][] {canonical}, tenantId, deviceId, key, false)[0];
  }

  /**
   * Which of {@code mutations} carry a valid signature of this tenant's device holding {@code key},
   * given each one's canonical form without its signature ({@code Jcs.canonicalBytes(Envelopes.unsigned(m))},
   * which the push path computes once per mutation for its content digest too). Two batches at
   * a time when {@code parallel} and there are enough.
   */
  public boolean[] verifyAll(java.util.List<Mutation> mutations, byte[][] canonicalUnsigned, String tenantId, UUID deviceId,
      Ed25519.PublicKey key, boolean parallel) {
    int n = mutations.size();
    // Those with a signature of the right length go on, in order; the rest stay false.
    int[] at = new int[n];
    byte[][] signatures = new byte[n][];
    byte[][] messages = new byte[n][];
    int m = 0;
    for (int i = 0; i < n; i++) {
      Mutation mutation = mutations.get(i);
      Optional<byte[]> signature = mutation.signature() == null ? Optional.empty() : Ed25519.signatureBytes(mutation.signature());
      if (signature.isPresent()) {
        at[m] = i;
        signatures[m] = signature.get();
        messages[m] = Envelopes.mutationSigningInput(tenantId, deviceId, canonicalUnsigned[i]);
        m++;
      }
    }
    boolean[] valid = verifySigned(java.util.Arrays.copyOf(signatures, m), java.util.Arrays.copyOf(messages, m), key, parallel);
    boolean[] ok = new boolean[n];
    for (int j = 0; j < m; j++) {
      ok[at[j]] = valid[j];
    }
    return ok;
  }

  /**
   * Whether each {@code signatures[i]} (64 bytes) is {@code key}'s signature of {@code messages[i]}:
   * the push path's check once each mutation's signed bytes are known. Two batches at a time when
   * {@code parallel} and there are enough.
   */
  public boolean[] verifySigned(byte[][] signatures, byte[][] messages, Ed25519.PublicKey key, boolean parallel) {
    int m = signatures.length;
    boolean[] valid = new boolean[m];
    Optional<Keys> k = keysOf(key);
    if (k.isEmpty()) {
      return valid;
    }
    if (parallel && m >= 2 * 64) {
      int mid = m / 2;
      // A parallel stream, not a task handed to the common pool and joined: the caller works on
      // the halves itself, so the check finishes even when every pool thread is blocked elsewhere
      // (GracefulShutdownTest blocks them; a joined task waited there for the shutdown's 30 s).
      java.util.stream.IntStream.range(0, 2).parallel()
          .forEach(h -> check(k.get(), signatures, messages, h == 0 ? 0 : mid, h == 0 ? mid : m, valid));
    } else {
      check(k.get(), signatures, messages, 0, m, valid);
    }
    return valid;
  }

  /** Decides [from, to) into {@code valid}: all at once when the batch holds, else each half again. */
  private static void check(Keys k, byte[][] signatures, byte[][] messages, int from, int to, boolean[] valid) {
    if (to - from < MIN_BATCH) {
      for (int j = from; j < to; j++) {
        valid[j] = org.bouncycastle.math.ec.rfc8032.Ed25519.verify(signatures[j], 0, k.point(), messages[j], 0, messages[j].length);
      }
    } else if (Ed25519Batch.allValid(k.batch(), signatures, messages, from, to)) {
      java.util.Arrays.fill(valid, from, to, true);
    } else {
      int mid = (from + to) >>> 1;
      check(k, signatures, messages, from, mid, valid);
      check(k, signatures, messages, mid, to, valid);
    }
  }

  private Optional<Keys> keysOf(Ed25519.PublicKey key) {
    Optional<Keys> k = keys.get(key.encoded());
    if (k == null) {
      // Full validation refuses keys of small order or outside the prime-order group; the batch form needs the same point.
      PublicPoint point = org.bouncycastle.math.ec.rfc8032.Ed25519.validatePublicKeyFullExport(key.raw(), 0);
      k = point == null ? Optional.empty() : Ed25519Batch.key(key.raw()).map(b -> new Keys(point, b));
      if (keys.size() >= MAX_KEYS) {
        keys.clear();
      }
      keys.put(key.encoded(), k);
    }
    return k;
  }
}
