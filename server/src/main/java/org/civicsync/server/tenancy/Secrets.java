package org.civicsync.server.tenancy;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Locale;
import org.civicsync.core.canonical.Digests;

/** Random secrets and their stored hashes. */
public final class Secrets {
  /** Crockford's base32 alphabet: no I, L, O or U, so codes survive being read aloud and typed. */
  private static final char[] CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ".toCharArray();
  private static final SecureRandom RANDOM = new SecureRandom();

  private Secrets() {}

  /** A device token: {@code csd_} and 256 random bits, base64url. */
  public static String newDeviceToken() {
    return "csd_" + random256();
  }

  /** An API-client token: {@code csk_} and 256 random bits, base64url. */
  public static String newApiClientToken() {
    return "csk_" + random256();
  }

  /** An admin token: {@code csa_} and 256 random bits, base64url. */
  public static String newAdminToken() {
    return "csa_" + random256();
  }

  /** An enrollment code: 60 random bits as {@code XXXX-XXXX-XXXX} in Crockford base32. */
  public static String newEnrollmentCode() {
    StringBuilder sb = new StringBuilder(14);
    for (int i = 0; i < 12; i++) {
      if (i > 0 && i % 4 == 0) {
        sb.append('-');
      }
      sb.append(CROCKFORD[RANDOM.nextInt(32)]);
    }
    return sb.toString();
  }

  /**
   * The canonical form of a typed enrollment code: upper case, separators dropped, and the letters
   * people confuse with digits read as those digits (O as 0, I and L as 1), as Crockford intends.
   */
  public static String normalizeCode(String typed) {
    StringBuilder sb = new StringBuilder();
    for (char c : typed.toUpperCase(Locale.ROOT).toCharArray()) {
      switch (c) {
        case '-', ' ', '\t' -> { }
        case 'O' -> sb.append('0');
        case 'I', 'L' -> sb.append('1');
        default -> sb.append(c);
      }
    }
    return sb.toString();
  }

  /** SHA-256 hex of a secret; what the store keeps. */
  public static String hash(String secret) {
    return Digests.sha256Hex(secret.getBytes(StandardCharsets.UTF_8));
  }

  /** A token-renewal challenge: 256 random bits, base64url (43 characters). */
  public static String newChallenge() {
    return random256();
  }

  private static String random256() {
    byte[] b = new byte[32];
    RANDOM.nextBytes(b);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }
}
