package org.civicsync.server.push;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Base64;
import java.util.Random;
import org.civicsync.core.signing.Ed25519;
import org.junit.jupiter.api.Test;

/**
 * The batch equation holds exactly when every signature in it passes Bouncy Castle's single check,
 * whatever is wrong with the one that does not; signatures made by the JDK.
 */
class Ed25519BatchTest {
  private static final long SEED = new Random().nextLong();
  private final Random random = new Random(SEED);

  @Test
  void theBasePointHasTheGroupsPrimeOrder() {
    assertThat(times(Ed25519Batch.L, Ed25519Batch.BASE).isNeutral()).as("[L]B").isTrue();
    assertThat(times(BigInteger.valueOf(8), Ed25519Batch.BASE).isNeutral()).as("[8]B").isFalse();
    assertThat(Ed25519Batch.BASE.encode()).isEqualTo(Base64.getDecoder().decode("WGZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmZmY="));
  }

  @Test
  void batchesOfValidSignaturesHoldAtEverySize() {
    Ed25519.KeyPair keys = Ed25519.generate();
    for (int n : new int[] {1, 2, 3, 5, 16, 63, 100, 129, 500}) {
      Signed s = sign(keys, n);
      assertThat(Ed25519Batch.allValid(s.key, s.signatures, s.messages, 0, n)).as("n=%d (seed %d)", n, SEED).isTrue();
    }
  }

  @Test
  void oneBadSignatureOfAnyKindFailsTheBatch() {
    Ed25519.KeyPair keys = Ed25519.generate();
    Ed25519.KeyPair other = Ed25519.generate();
    for (int kind = 0; kind < 7; kind++) {
      for (int n : new int[] {1, 4, 100}) {
        Signed s = sign(keys, n);
        int bad = random.nextInt(n);
        byte[] sig = s.signatures[bad];
        switch (kind) {
          case 0 -> sig[random.nextInt(32)] ^= (byte) (1 << random.nextInt(8)); // R damaged
          case 1 -> sig[32 + random.nextInt(31)] ^= (byte) (1 << random.nextInt(8)); // S damaged, still below 2^253
          case 2 -> s.messages[bad] = "another message".getBytes(StandardCharsets.UTF_8);
          case 3 -> System.arraycopy(littleEndian32(Ed25519Batch.littleEndian(sig, 32, 32).add(Ed25519Batch.L)), 0, sig, 32, 32); // S + L
          case 4 -> System.arraycopy(sign(other, 1).signatures[0], 0, sig, 0, 64); // another key's signature
          case 5 -> System.arraycopy(smallOrderPoint().encode(), 0, sig, 0, 32); // R of small order
          default -> System.arraycopy(new byte[] {(byte) 0xEE, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
              -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0x7F}, 0, sig, 0, 32); // y = p + 1: not canonical
        }
        boolean single = org.bouncycastle.math.ec.rfc8032.Ed25519.verify(sig, 0, keys.publicKey().raw(), 0, s.messages[bad], 0, s.messages[bad].length);
        assertThat(single).as("kind %d: Bouncy Castle refuses it (seed %d)", kind, SEED).isFalse();
        assertThat(Ed25519Batch.allValid(s.key, s.signatures, s.messages, 0, n)).as("kind %d, n=%d (seed %d)", kind, n, SEED).isFalse();
      }
    }
  }

  /**
   * R = [r]B + T with T of small order, S = r + k·a: RFC 8032's cofactored equation holds (and Bouncy
   * Castle accepts it), the shortcut [S]B = R + [k]A does not (and the JDK refuses it). Only the key's
   * holder can make such a signature; the batch must say what the single check says.
   */
  @Test
  void aSignatureWithASmallOrderPartInRIsJudgedAsBouncyCastleJudgesIt() throws Exception {
    Ed25519.KeyPair keys = Ed25519.generate();
    Signed s = sign(keys, 8);
    byte[] message = "made on purpose".getBytes(StandardCharsets.UTF_8);
    BigInteger a = secretScalar(keys);
    BigInteger r = new BigInteger(250, random);
    Ed25519Batch.Extended sum = times(r, Ed25519Batch.BASE);
    Ed25519Batch.Cached t = new Ed25519Batch.Cached();
    Ed25519Batch.Extended torsion = new Ed25519Batch.Extended();
    torsion.set(smallOrderPoint(), false);
    t.of(torsion);
    sum.add(t);
    byte[] rBytes = sum.toAffine().encode();
    MessageDigest sha = MessageDigest.getInstance("SHA-512");
    sha.update(rBytes);
    sha.update(keys.publicKey().raw());
    BigInteger k = Ed25519Batch.littleEndian(sha.digest(message), 0, 64).mod(Ed25519Batch.L);
    byte[] sig = new byte[64];
    System.arraycopy(rBytes, 0, sig, 0, 32);
    System.arraycopy(littleEndian32(r.add(k.multiply(a)).mod(Ed25519Batch.L)), 0, sig, 32, 32);
    s.signatures[3] = sig;
    s.messages[3] = message;

    assertThat(org.bouncycastle.math.ec.rfc8032.Ed25519.verify(sig, 0, keys.publicKey().raw(), 0, message, 0, message.length)).isTrue();
    assertThat(keys.publicKey().verify(message, Base64.getUrlEncoder().withoutPadding().encodeToString(sig))).as("the JDK").isFalse();
    assertThat(Ed25519Batch.allValid(s.key, s.signatures, s.messages, 0, 8)).as("seed %d", SEED).isTrue();
  }

  @Test
  void aPushsDecisionsAreBouncyCastlesOneByOne() {
    SignatureCheck check = new SignatureCheck();
    Ed25519.KeyPair keys = Ed25519.generate();
    for (int round = 0; round < 20; round++) {
      int n = 1 + random.nextInt(300);
      Signed s = sign(keys, n);
      int bad = random.nextInt(4) == 0 ? 0 : random.nextInt(1 + n / 10);
      for (int b = 0; b < bad; b++) {
        s.signatures[random.nextInt(n)][random.nextInt(64)] ^= (byte) (1 << random.nextInt(8));
      }
      boolean[] expected = new boolean[n];
      for (int i = 0; i < n; i++) {
        expected[i] = org.bouncycastle.math.ec.rfc8032.Ed25519.verify(s.signatures[i], 0, keys.publicKey().raw(), 0, s.messages[i], 0,
            s.messages[i].length);
      }
      assertThat(check.verifySigned(s.signatures, s.messages, keys.publicKey(), random.nextBoolean()))
          .as("round %d, n=%d, %d damaged (seed %d)", round, n, bad, SEED).isEqualTo(expected);
    }
  }

  private record Signed(Ed25519Batch.Key key, byte[][] signatures, byte[][] messages) {}

  private Signed sign(Ed25519.KeyPair keys, int n) {
    byte[][] signatures = new byte[n][];
    byte[][] messages = new byte[n][];
    for (int i = 0; i < n; i++) {
      messages[i] = ("mutation " + random.nextLong() + " ".repeat(random.nextInt(200))).getBytes(StandardCharsets.UTF_8);
      signatures[i] = Base64.getUrlDecoder().decode(keys.privateKey().sign(messages[i]));
    }
    return new Signed(Ed25519Batch.key(keys.publicKey().raw()).orElseThrow(), signatures, messages);
  }

  /** A point of order 2, 4 or 8: [L] of a random point of the curve that is not in B's group. */
  private Ed25519Batch.Affine smallOrderPoint() {
    while (true) {
      byte[] b = new byte[32];
      random.nextBytes(b);
      var p = Ed25519Batch.decode(b);
      if (p.isPresent()) {
        Ed25519Batch.Extended t = times(Ed25519Batch.L, p.get());
        if (!t.isNeutral()) {
          return t.toAffine();
        }
      }
    }
  }

  /** [k]P by double-and-add. */
  private static Ed25519Batch.Extended times(BigInteger k, Ed25519Batch.Affine p) {
    Ed25519Batch.Extended acc = Ed25519Batch.Extended.neutral();
    for (int i = k.bitLength() - 1; i >= 0; i--) {
      acc.twice();
      if (k.testBit(i)) {
        acc.add(p, false);
      }
    }
    return acc;
  }

  private static BigInteger secretScalar(Ed25519.KeyPair keys) throws Exception {
    byte[] h = MessageDigest.getInstance("SHA-512").digest(Base64.getUrlDecoder().decode(keys.privateKey().encoded()));
    h[0] &= (byte) 248;
    h[31] &= 127;
    h[31] |= 64;
    return Ed25519Batch.littleEndian(h, 0, 32);
  }

  private static byte[] littleEndian32(BigInteger v) {
    byte[] be = v.toByteArray();
    byte[] out = new byte[32];
    for (int i = 0; i < be.length && i < 32; i++) {
      out[i] = be[be.length - 1 - i];
    }
    return Arrays.copyOf(out, 32);
  }
}
