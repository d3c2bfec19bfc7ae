package org.civicsync.core.signing;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPairGenerator;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.Optional;

/**
 * Ed25519 (RFC 8032) with keys and signatures as the wire carries them: base64url without padding
 * of the raw 32-byte public key, 32-byte private seed and 64-byte signature. Uses the JDK's
 * provider; the raw forms are wrapped in their fixed X.509 / PKCS#8 prefixes.
 */
public final class Ed25519 {
  private static final byte[] X509_PREFIX = hex("302a300506032b6570032100");
  private static final byte[] PKCS8_PREFIX = hex("302e020100300506032b657004220420");
  private static final Base64.Encoder B64 = Base64.getUrlEncoder().withoutPadding();
  private static final Base64.Decoder D64 = Base64.getUrlDecoder();

  private Ed25519() {}

  /** A verified-decodable public key. */
  public static final class PublicKey {
    private final java.security.PublicKey key;
    private final String encoded;

    private PublicKey(java.security.PublicKey key, String encoded) {
      this.key = key;
      this.encoded = encoded;
    }

    /** The raw 32 bytes as base64url without padding. */
    public String encoded() {
      return encoded;
    }

    /** The raw 32 bytes (a copy), for verifiers other than the JDK's. */
    public byte[] raw() {
      return D64.decode(encoded);
    }

    /** Whether {@code signature} (base64url, 64 bytes) is this key's signature of {@code message}. */
    public boolean verify(byte[] message, String signature) {
      Optional<byte[]> sig = decode(signature, 64);
      if (!sig.isPresent()) {
        return false;
      }
      try {
        Signature s = Signature.getInstance("Ed25519");
        s.initVerify(key);
        s.update(message);
        return s.verify(sig.get());
      } catch (GeneralSecurityException | IllegalArgumentException e) {
        return false;
      }
    }
  }

  /** A private key (for devices and tests; the server never holds one). */
  public static final class PrivateKey {
    private final java.security.PrivateKey key;
    private final String seed;

    private PrivateKey(java.security.PrivateKey key, String seed) {
      this.key = key;
      this.seed = seed;
    }

    /** The raw 32-byte seed as base64url without padding. */
    public String encoded() {
      return seed;
    }

    /** The base64url signature of {@code message} (deterministic: same key and message, same signature). */
    public String sign(byte[] message) {
      try {
        Signature s = Signature.getInstance("Ed25519");
        s.initSign(key);
        s.update(message);
        return B64.encodeToString(s.sign());
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException("Ed25519 signing failed", e);
      }
    }
  }

  /** A key pair. */
  public record KeyPair(PublicKey publicKey, PrivateKey privateKey) {}

  /**
   * Encodings of the points of small order (and their non-canonical and sign-flipped forms), as
   * libsodium refuses them: a key among them lets signatures verify for many messages.
   */
  private static final java.util.Set<String> SMALL_ORDER = smallOrder();

  private static java.util.Set<String> smallOrder() {
    String[] base = {
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"};
    java.util.Set<String> out = new java.util.HashSet<>();
    for (String b : base) {
      out.add(b);
      byte[] flipped = hex(b);
      flipped[31] ^= (byte) 0x80;
      out.add(toHex(flipped));
    }
    return java.util.Set.copyOf(out);
  }

  /**
   * Decodes a public key; empty when it is not base64url of exactly 32 bytes of a valid point, or
   * is a point of small order.
   */
  public static Optional<PublicKey> publicKey(String encoded) {
    Optional<byte[]> raw = decode(encoded, 32);
    if (!raw.isPresent() || SMALL_ORDER.contains(toHex(raw.get()))) {
      return Optional.empty();
    }
    try {
      java.security.PublicKey k = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(concat(X509_PREFIX, raw.get())));
      return Optional.of(new PublicKey(k, encoded));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  /**
   * The private key whose seed is {@code seed} (base64url of 32 bytes), for signing only: unlike
   * {@link #fromSeed} it does not derive the public key, a scalar multiplication as costly as a
   * signature.
   */
  public static PrivateKey privateKey(String seed) {
    byte[] raw = decode(seed, 32).orElseThrow(() -> new IllegalArgumentException("a seed is base64url of 32 bytes"));
    try {
      return new PrivateKey(KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(concat(PKCS8_PREFIX, raw))), seed);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 is part of every Java 15+ platform", e);
    }
  }

  /** The key pair whose private seed is {@code seed} (base64url of 32 bytes). */
  public static KeyPair fromSeed(String seed) {
    byte[] raw = decode(seed, 32).orElseThrow(() -> new IllegalArgumentException("a seed is base64url of 32 bytes"));
    try {
      java.security.PrivateKey priv = privateKey(seed).key;
      // The JDK derives the public key only through a generator seeded with the private bytes.
      KeyPairGenerator g = KeyPairGenerator.getInstance("Ed25519");
      g.initialize(255, new FixedRandom(raw));
      java.security.KeyPair kp = g.generateKeyPair();
      byte[] x509 = kp.getPublic().getEncoded();
      String pub = B64.encodeToString(java.util.Arrays.copyOfRange(x509, X509_PREFIX.length, x509.length));
      return new KeyPair(publicKey(pub).get(), new PrivateKey(priv, seed));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 is part of every Java 15+ platform", e);
    }
  }

  /** A fresh random key pair. */
  public static KeyPair generate() {
    byte[] seed = new byte[32];
    new SecureRandom().nextBytes(seed);
    return fromSeed(B64.encodeToString(seed));
  }

  /** The 64 bytes of a signature in its wire form (base64url without padding), if it is one. */
  public static Optional<byte[]> signatureBytes(String signature) {
    return decode(signature, 64);
  }

  private static Optional<byte[]> decode(String s, int length) {
    // No regular expression: the server decodes every signature of every push (one compiled per
    // call was 2.6 % of its CPU on a large ingest). The decoder refuses what is not base64url, and
    // encoding back catches a non-canonical last character.
    if (s == null || s.length() != (length * 4 + 2) / 3 || s.indexOf('=') >= 0) {
      return Optional.empty();
    }
    try {
      byte[] b = D64.decode(s);
      return b.length == length && B64.encodeToString(b).equals(s) ? Optional.of(b) : Optional.empty();
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = new byte[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  // Not java.util.HexFormat: Android has it only from API 34.
  private static String toHex(byte[] b) {
    StringBuilder sb = new StringBuilder(b.length * 2);
    for (byte x : b) {
      sb.append(Character.forDigit((x >> 4) & 0xF, 16)).append(Character.forDigit(x & 0xF, 16));
    }
    return sb.toString();
  }

  private static byte[] hex(String h) {
    byte[] out = new byte[h.length() / 2];
    for (int i = 0; i < out.length; i++) {
      out[i] = (byte) Integer.parseInt(h.substring(2 * i, 2 * i + 2), 16);
    }
    return out;
  }

  /** Hands the generator exactly the seed bytes, so the pair is the one RFC 8032 derives from it. */
  private static final class FixedRandom extends SecureRandom {
    private final byte[] seed;

    FixedRandom(byte[] seed) {
      this.seed = seed.clone();
    }

    @Override
    public void nextBytes(byte[] bytes) {
      System.arraycopy(seed, 0, bytes, 0, Math.min(seed.length, bytes.length));
    }
  }
}
