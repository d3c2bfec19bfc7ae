package org.civicsync.server.push;

import java.math.BigInteger;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Optional;
import org.bouncycastle.math.ec.rfc7748.X25519Field;

/**
 * Checks many Ed25519 signatures of one key at once: for random 128-bit z<sub>i</sub>, whether
 * [8]([Σz<sub>i</sub>s<sub>i</sub>]B − Σ[z<sub>i</sub>]R<sub>i</sub> − [Σz<sub>i</sub>k<sub>i</sub>]A)
 * is the neutral element. That is RFC 8032's own (cofactored) equation for each signature, summed
 * with random weights, so the answer is "all valid" exactly when each one is (a false "all valid"
 * has probability about 2<sup>−125</sup>, over the weights, which the sender cannot see). Bouncy
 * Castle's single check, which the push path falls back on to find the bad ones, uses the same
 * cofactored equation; the JDK's provider checks [S]B = R + [k]A, which RFC 8032 allows instead and
 * which refuses the same signatures except those whose R was given a small-order component on
 * purpose by the key's holder (SignatureCheckTest and Ed25519BatchTest show both).
 *
 * <p>Why: one check costs a 128-bit double-scalar multiplication (about 80 µs here); in a batch the
 * points R<sub>i</sub> share one multi-scalar multiplication (Pippenger's buckets over signed
 * windows), so a signature costs its R's decompression, its hash and a few point additions.
 *
 * <p>Field arithmetic is Bouncy Castle's {@link X25519Field} (ten 25/26-bit limbs); points are in
 * extended twisted Edwards coordinates (Hisil, Wong, Carter, Dawson 2008) with their complete
 * addition law for a = −1, so the neutral element and equal points need no special case. Every
 * sum or difference is carried before it is multiplied, which keeps limbs inside what
 * {@code mul} accepts. Variable time: signatures and keys are public.
 */
final class Ed25519Batch {
  static final BigInteger L = BigInteger.ONE.shiftLeft(252).add(new BigInteger("27742317777372353535851937790883648493"));
  private static final BigInteger P = BigInteger.ONE.shiftLeft(255).subtract(BigInteger.valueOf(19));
  private static final BigInteger MASK_128 = BigInteger.ONE.shiftLeft(128).subtract(BigInteger.ONE);
  private static final int[] D = field(new BigInteger("-121665").multiply(BigInteger.valueOf(121666).modInverse(P)).mod(P));
  private static final int[] D2 = field(new BigInteger("-121665").multiply(BigInteger.valueOf(121666).modInverse(P)).shiftLeft(1).mod(P));
  /** The base point B, from its RFC 8032 encoding (y = 4/5, x even). */
  static final Affine BASE = decode(encodingOf(BigInteger.valueOf(4).multiply(BigInteger.valueOf(5).modInverse(P)).mod(P), false)).orElseThrow();
  private static final Affine BASE_128 = BASE.shifted128();
  private static final SecureRandom RANDOM = new SecureRandom();

  private Ed25519Batch() {}

  /** A public key ready for batches: −A and −[2<sup>128</sup>]A as affine points. */
  static final class Key {
    final byte[] encoded;
    final Affine negA;
    final Affine negA128;

    private Key(byte[] encoded, Affine a) {
      this.encoded = encoded.clone();
      this.negA = a.negate();
      this.negA128 = a.shifted128().negate();
    }
  }

  /**
   * The key for {@code encoded}, or empty if it is not a point's canonical encoding. Callers check
   * the key's order themselves (enrolment refuses small-order keys; the push path asks Bouncy
   * Castle's full validation first).
   */
  static Optional<Key> key(byte[] encoded) {
    return decode(encoded).map(a -> new Key(encoded, a));
  }

  /**
   * Whether every {@code signatures[i]} (64 bytes) is a valid signature of {@code messages[i]} by
   * {@code key}, for i in [from, to). False if any is not, including one whose R is no canonical
   * point encoding or whose S is not below the group order.
   */
  static boolean allValid(Key key, byte[][] signatures, byte[][] messages, int from, int to) {
    int n = to - from;
    if (n <= 0) {
      return true;
    }
    Affine[] points = new Affine[n + 4];
    long[] lo = new long[n + 4];
    long[] hi = new long[n + 4];
    byte[] weights = new byte[16 * n];
    RANDOM.nextBytes(weights);
    MessageDigest sha512 = sha512();
    BigInteger sumS = BigInteger.ZERO;
    BigInteger sumK = BigInteger.ZERO;
    for (int j = 0; j < n; j++) {
      byte[] sig = signatures[from + j];
      BigInteger s = littleEndian(sig, 32, 32);
      if (s.compareTo(L) >= 0) {
        return false;
      }
      Optional<Affine> r = decode(java.util.Arrays.copyOfRange(sig, 0, 32));
      if (r.isEmpty()) {
        return false;
      }
      sha512.update(sig, 0, 32);
      sha512.update(key.encoded);
      sha512.update(messages[from + j]);
      BigInteger k = littleEndian(sha512.digest(), 0, 64).mod(L);
      long zLo = 0;
      long zHi = 0;
      for (int b = 0; b < 8; b++) {
        zLo |= (weights[16 * j + b] & 0xFFL) << (8 * b);
        zHi |= (weights[16 * j + 8 + b] & 0xFFL) << (8 * b);
      }
      BigInteger z = new BigInteger(1, toBigEndian(zLo, zHi));
      sumS = sumS.add(z.multiply(s));
      sumK = sumK.add(z.multiply(k));
      points[j] = r.get().negate();
      lo[j] = zLo;
      hi[j] = zHi;
    }
    sumS = sumS.mod(L);
    sumK = sumK.mod(L);
    // [sumS]B − [sumK]A with both scalars split at bit 128, so that every scalar of the sum is 128 bits.
    put(points, lo, hi, n, BASE, sumS.and(MASK_128));
    put(points, lo, hi, n + 1, BASE_128, sumS.shiftRight(128));
    put(points, lo, hi, n + 2, key.negA, sumK.and(MASK_128));
    put(points, lo, hi, n + 3, key.negA128, sumK.shiftRight(128));
    Extended sum = multiScalar(points, lo, hi);
    sum.twice();
    sum.twice();
    sum.twice();
    return sum.isNeutral();
  }

  private static void put(Affine[] points, long[] lo, long[] hi, int at, Affine p, BigInteger scalar) {
    points[at] = p;
    lo[at] = scalar.longValue();
    hi[at] = scalar.shiftRight(64).longValue();
  }

  /** Σ [scalar<sub>i</sub>]P<sub>i</sub> for 128-bit scalars (lo, hi as unsigned halves), Pippenger's bucket method. */
  static Extended multiScalar(Affine[] points, long[] lo, long[] hi) {
    int n = points.length;
    int c = windowBits(n);
    int windows = (128 + c) / c; // c·windows ≥ 129: the top window never carries out
    int half = 1 << (c - 1);
    // Signed digits in (−2^(c−1), 2^(c−1)]: half the buckets of unsigned ones, a negation being free.
    int[] digits = new int[n * windows];
    for (int i = 0; i < n; i++) {
      int carry = 0;
      for (int w = 0; w < windows; w++) {
        int bits = bitsAt(lo[i], hi[i], w * c, c) + carry;
        if (bits > half) {
          digits[i * windows + w] = bits - (1 << c);
          carry = 1;
        } else {
          digits[i * windows + w] = bits;
          carry = 0;
        }
      }
    }
    Extended[] buckets = new Extended[half + 1];
    for (int j = 1; j <= half; j++) {
      buckets[j] = new Extended();
    }
    boolean[] used = new boolean[half + 1];
    Extended acc = Extended.neutral();
    Extended running = new Extended();
    Extended window = new Extended();
    Cached cached = new Cached();
    for (int w = windows - 1; w >= 0; w--) {
      if (w < windows - 1) {
        for (int d = 0; d < c; d++) {
          acc.twice();
        }
      }
      java.util.Arrays.fill(used, false);
      for (int i = 0; i < n; i++) {
        int digit = digits[i * windows + w];
        if (digit == 0) {
          continue;
        }
        int b = Math.abs(digit);
        if (used[b]) {
          buckets[b].add(points[i], digit < 0);
        } else {
          buckets[b].set(points[i], digit < 0);
          used[b] = true;
        }
      }
      // Σ j·bucket_j as a running sum of running sums, from the top bucket down.
      boolean any = false;
      running.setNeutral();
      window.setNeutral();
      for (int j = half; j >= 1; j--) {
        if (used[j]) {
          cached.of(buckets[j]);
          running.add(cached);
          any = true;
        }
        if (any) {
          cached.of(running);
          window.add(cached);
        }
      }
      if (any) {
        cached.of(window);
        acc.add(cached);
      }
    }
    return acc;
  }

  /** The window width that minimises (points + buckets) additions per window over 128 bits. */
  private static int windowBits(int n) {
    int best = 2;
    double bestCost = Double.MAX_VALUE;
    for (int c = 2; c <= 12; c++) {
      double cost = ((128 + c) / c) * (7.0 * n + 2 * 9.0 * (1 << (c - 1)));
      if (cost < bestCost) {
        bestCost = cost;
        best = c;
      }
    }
    return best;
  }

  private static int bitsAt(long lo, long hi, int pos, int count) {
    long v;
    if (pos >= 128) {
      return 0;
    } else if (pos >= 64) {
      v = hi >>> (pos - 64);
    } else if (pos == 0) {
      v = lo;
    } else {
      v = (lo >>> pos) | (hi << (64 - pos));
    }
    return (int) (v & ((1L << count) - 1));
  }

  /**
   * The point a 32-byte encoding names (RFC 8032 section 5.1.3), or empty: y must be below p, x
   * must exist, and x = 0 must not come with the sign bit set.
   */
  static Optional<Affine> decode(byte[] encoded) {
    if (encoded.length != 32 || !canonicalY(encoded)) {
      return Optional.empty();
    }
    int sign = (encoded[31] & 0x80) >>> 7;
    int[] y = X25519Field.create();
    X25519Field.decode(encoded, 0, y);
    int[] u = X25519Field.create();
    int[] v = X25519Field.create();
    X25519Field.sqr(y, u);
    X25519Field.mul(D, u, v);
    X25519Field.subOne(u);
    X25519Field.addOne(v);
    X25519Field.carry(u);
    X25519Field.carry(v);
    int[] x = X25519Field.create();
    if (!X25519Field.sqrtRatioVar(u, v, x)) {
      return Optional.empty();
    }
    X25519Field.normalize(x);
    if (sign == 1 && X25519Field.isZeroVar(x)) {
      return Optional.empty();
    }
    if ((x[0] & 1) != sign) {
      X25519Field.negate(x, x);
      X25519Field.normalize(x);
    }
    X25519Field.normalize(y);
    return Optional.of(new Affine(x, y));
  }

  private static boolean canonicalY(byte[] e) {
    // Not canonical: y ≥ p = 2^255 − 19, i.e. 0x7FFF…FFED ≤ y (sign bit aside).
    if ((e[31] & 0x7F) != 0x7F) {
      return true;
    }
    for (int i = 30; i >= 1; i--) {
      if ((e[i] & 0xFF) != 0xFF) {
        return true;
      }
    }
    return (e[0] & 0xFF) < 0xED;
  }

  /** The RFC 8032 encoding of the affine point (x, y). */
  static byte[] encodingOf(BigInteger y, boolean xOdd) {
    byte[] out = new byte[32];
    byte[] be = y.toByteArray();
    for (int i = 0; i < be.length && i < 32; i++) {
      out[i] = be[be.length - 1 - i];
    }
    if (xOdd) {
      out[31] |= (byte) 0x80;
    }
    return out;
  }

  private static MessageDigest sha512() {
    try {
      return MessageDigest.getInstance("SHA-512");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-512", e);
    }
  }

  static BigInteger littleEndian(byte[] b, int off, int len) {
    byte[] be = new byte[len];
    for (int i = 0; i < len; i++) {
      be[i] = b[off + len - 1 - i];
    }
    return new BigInteger(1, be);
  }

  private static byte[] toBigEndian(long lo, long hi) {
    byte[] be = new byte[16];
    for (int i = 0; i < 8; i++) {
      be[15 - i] = (byte) (lo >>> (8 * i));
      be[7 - i] = (byte) (hi >>> (8 * i));
    }
    return be;
  }

  /** z = x + y, carried: every sum is carried before it is multiplied. */
  private static void sum(int[] x, int[] y, int[] z) {
    X25519Field.add(x, y, z);
    X25519Field.carry(z);
  }

  /** z = x − y, carried. */
  private static void difference(int[] x, int[] y, int[] z) {
    X25519Field.sub(x, y, z);
    X25519Field.carry(z);
  }

  private static int[] field(BigInteger v) {
    int[] f = X25519Field.create();
    X25519Field.decode(encodingOf(v, false), 0, f);
    return f;
  }

  /** An affine point with what adding it needs: y + x, y − x and 2d·x·y. */
  static final class Affine {
    final int[] x;
    final int[] y;
    final int[] ypx = X25519Field.create();
    final int[] ymx = X25519Field.create();
    final int[] xy2d = X25519Field.create();

    Affine(int[] x, int[] y) {
      this.x = x;
      this.y = y;
      sum(y, x, ypx);
      difference(y, x, ymx);
      X25519Field.mul(x, y, xy2d);
      X25519Field.mul(xy2d, D2, xy2d);
    }

    Affine negate() {
      int[] nx = X25519Field.create();
      X25519Field.negate(x, nx);
      X25519Field.normalize(nx);
      return new Affine(nx, y.clone());
    }

    /** [2<sup>128</sup>] of this point, affine again. */
    Affine shifted128() {
      Extended e = new Extended();
      e.set(this, false);
      for (int i = 0; i < 128; i++) {
        e.twice();
      }
      return e.toAffine();
    }

    /** The RFC 8032 encoding of this point. */
    byte[] encode() {
      int[] nx = x.clone();
      int[] ny = y.clone();
      X25519Field.normalize(nx);
      X25519Field.normalize(ny);
      byte[] out = new byte[32];
      X25519Field.encode(ny, out, 0);
      out[31] |= (byte) ((nx[0] & 1) << 7);
      return out;
    }
  }

  /** A point ready to be added to an extended one: Y + X, Y − X, 2d·T and 2Z. */
  static final class Cached {
    final int[] ypx = X25519Field.create();
    final int[] ymx = X25519Field.create();
    final int[] t2d = X25519Field.create();
    final int[] z2 = X25519Field.create();

    void of(Extended p) {
      sum(p.y, p.x, ypx);
      difference(p.y, p.x, ymx);
      X25519Field.mul(p.t, D2, t2d);
      sum(p.z, p.z, z2);
    }
  }

  /** A point in extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z. */
  static final class Extended {
    final int[] x = X25519Field.create();
    final int[] y = X25519Field.create();
    final int[] z = X25519Field.create();
    final int[] t = X25519Field.create();
    private final int[] a = X25519Field.create();
    private final int[] b = X25519Field.create();
    private final int[] c = X25519Field.create();
    private final int[] d = X25519Field.create();
    private final int[] e = X25519Field.create();
    private final int[] f = X25519Field.create();
    private final int[] g = X25519Field.create();
    private final int[] h = X25519Field.create();

    static Extended neutral() {
      Extended p = new Extended();
      p.setNeutral();
      return p;
    }

    void setNeutral() {
      X25519Field.zero(x);
      X25519Field.one(y);
      X25519Field.one(z);
      X25519Field.zero(t);
    }

    void set(Affine p, boolean negative) {
      X25519Field.copy(p.x, 0, x, 0);
      if (negative) {
        X25519Field.negate(x, x);
        X25519Field.carry(x);
      }
      X25519Field.copy(p.y, 0, y, 0);
      X25519Field.one(z);
      X25519Field.mul(x, y, t);
    }

    /** this += (negative ? −p : p), with Z<sub>2</sub> = 1 (madd-2008-hwcd-3, a = −1). */
    void add(Affine p, boolean negative) {
      // −(x, y) = (−x, y): y + x and y − x change places and 2d·x·y changes sign.
      int[] qPlus = negative ? p.ymx : p.ypx;
      int[] qMinus = negative ? p.ypx : p.ymx;
      difference(y, x, a);
      X25519Field.mul(a, qMinus, a);
      sum(y, x, b);
      X25519Field.mul(b, qPlus, b);
      X25519Field.mul(t, p.xy2d, c);
      if (negative) {
        X25519Field.negate(c, c);
      }
      sum(z, z, d);
      finish();
    }

    /** this += q (add-2008-hwcd-3, a = −1). */
    void add(Cached q) {
      difference(y, x, a);
      X25519Field.mul(a, q.ymx, a);
      sum(y, x, b);
      X25519Field.mul(b, q.ypx, b);
      X25519Field.mul(t, q.t2d, c);
      X25519Field.mul(z, q.z2, d);
      finish();
    }

    private void finish() {
      difference(b, a, e);
      difference(d, c, f);
      sum(d, c, g);
      sum(b, a, h);
      products();
    }

    /** X = E·F, Y = G·H, T = E·H, Z = F·G: how both formulas end. */
    private void products() {
      X25519Field.mul(e, f, x);
      X25519Field.mul(g, h, y);
      X25519Field.mul(e, h, t);
      X25519Field.mul(f, g, z);
    }

    /** this = [2]this (dbl-2008-hwcd, a = −1, with E, F, G, H negated, which leaves the products as they are). */
    void twice() {
      X25519Field.sqr(x, a);
      X25519Field.sqr(y, b);
      X25519Field.sqr(z, c);
      sum(c, c, c);
      sum(a, b, h);
      sum(x, y, e);
      X25519Field.sqr(e, e);
      difference(h, e, e);
      difference(a, b, g);
      sum(c, g, f);
      products();
    }

    boolean isNeutral() {
      int[] nx = x.clone();
      int[] ny = y.clone();
      int[] nz = z.clone();
      X25519Field.normalize(nx);
      X25519Field.normalize(ny);
      X25519Field.normalize(nz);
      return X25519Field.isZeroVar(nx) && !X25519Field.isZeroVar(ny) && X25519Field.areEqualVar(ny, nz);
    }

    Affine toAffine() {
      int[] zi = X25519Field.create();
      X25519Field.invVar(z, zi);
      int[] ax = X25519Field.create();
      int[] ay = X25519Field.create();
      X25519Field.mul(x, zi, ax);
      X25519Field.mul(y, zi, ay);
      X25519Field.normalize(ax);
      X25519Field.normalize(ay);
      return new Affine(ax, ay);
    }
  }
}
