package org.civicsync.server.push;

import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import org.bouncycastle.math.ec.rfc8032.Ed25519.PublicPoint;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;

/**
 * Checks mutations' Ed25519 signatures on the push path, one per mutation, with Bouncy Castle's
 * RFC 8032 code and each device's public point decoded once. The JDK's provider (what {@link
 * Envelopes#verify} uses, and devices' own code) took about 600 µs per check on the 2-core
 * machines this runs on, Bouncy Castle about 80 µs (bench's {@code HotPaths}); at one check per
 * mutation the JDK's would cap a district server's ingest near 3,000 mutations/s. The decisions
 * are the same: {@code SignatureCheckTest} runs the contract's vectors and random forgeries through
 * both.
 */
public final class SignatureCheck {
  // Devices' keys are few and long-lived; the bound only keeps a misbehaving tenant from growing it.
  private static final int MAX_KEYS = 100_000;

  private final ConcurrentHashMap<String, PublicPoint> points = new ConcurrentHashMap<>();

  /** Whether {@code m} carries a valid signature of this tenant's device holding {@code key}. */
  public boolean verify(Mutation m, String tenantId, UUID deviceId, Ed25519.PublicKey key) {
    return verify(m, org.civicsync.core.canonical.Jcs.canonicalBytes(Envelopes.unsigned(m)), tenantId, deviceId, key);
  }

  /** The same, given the mutation's canonical form without its signature (computed once per mutation). */
  boolean verify(Mutation m, byte[] canonicalUnsigned, String tenantId, UUID deviceId, Ed25519.PublicKey key) {
    if (m.signature() == null) {
      return false;
    }
    Optional<byte[]> signature = Ed25519.signatureBytes(m.signature());
    if (signature.isEmpty()) {
      return false;
    }
    PublicPoint point = points.get(key.encoded());
    if (point == null) {
      point = org.bouncycastle.math.ec.rfc8032.Ed25519.validatePublicKeyFullExport(key.raw(), 0);
      if (point == null) {
        return false;
      }
      if (points.size() >= MAX_KEYS) {
        points.clear();
      }
      points.put(key.encoded(), point);
    }
    byte[] message = Envelopes.mutationSigningInput(tenantId, deviceId, canonicalUnsigned);
    return org.bouncycastle.math.ec.rfc8032.Ed25519.verify(signature.get(), 0, point, message, 0, message.length);
  }
}
