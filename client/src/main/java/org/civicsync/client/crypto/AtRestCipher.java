package org.civicsync.client.crypto;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.PBEKeySpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Seals and opens values stored on the device with AES-256-GCM. A sealed value is {@code version
 * byte 1 || 12-byte random nonce || ciphertext || 16-byte tag}; {@code context} (e.g. the table
 * and row key) is bound as associated data, so a sealed value moved to another row does not open.
 * Thread-safe.
 */
public final class AtRestCipher {
  /** PBKDF2-HMAC-SHA256 iterations for passphrase keys (OWASP 2023 guidance). */
  public static final int PBKDF2_ITERATIONS = 600_000;
  private static final byte VERSION = 1;
  private static final SecureRandom RANDOM = new SecureRandom();

  private final SecretKeySpec key;

  private AtRestCipher(byte[] key) {
    if (key.length != 32) {
      throw new IllegalArgumentException("an AES-256 key is 32 bytes");
    }
    this.key = new SecretKeySpec(key.clone(), "AES");
  }

  /** A cipher under a 32-byte key the app holds (e.g. unwrapped with the Android Keystore). */
  public static AtRestCipher withKey(byte[] key) {
    return new AtRestCipher(key);
  }

  /**
   * A cipher under the key PBKDF2-HMAC-SHA256 derives from the passphrase and salt ({@link
   * #PBKDF2_ITERATIONS} iterations, 256 bits). Store the salt (random, 16 bytes) beside the data;
   * it is not secret.
   */
  public static AtRestCipher fromPassphrase(char[] passphrase, byte[] salt) {
    try {
      PBEKeySpec spec = new PBEKeySpec(passphrase, salt, PBKDF2_ITERATIONS, 256);
      byte[] k = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
      spec.clearPassword();
      return new AtRestCipher(k);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("PBKDF2WithHmacSHA256 is on every Java and Android platform", e);
    }
  }

  /** A fresh random salt for {@link #fromPassphrase}. */
  public static byte[] newSalt() {
    byte[] s = new byte[16];
    RANDOM.nextBytes(s);
    return s;
  }

  public byte[] seal(byte[] plain, String context) {
    try {
      byte[] nonce = new byte[12];
      RANDOM.nextBytes(nonce);
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, nonce));
      c.updateAAD(context.getBytes(StandardCharsets.UTF_8));
      byte[] body = c.doFinal(plain);
      byte[] out = new byte[1 + 12 + body.length];
      out[0] = VERSION;
      System.arraycopy(nonce, 0, out, 1, 12);
      System.arraycopy(body, 0, out, 13, body.length);
      return out;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM failed", e);
    }
  }

  /**
   * Opens a sealed value.
   *
   * @throws WrongKeyException when the key or context is not the one it was sealed with, or the
   *     value was altered
   */
  public byte[] open(byte[] sealed, String context) {
    if (sealed.length < 1 + 12 + 16 || sealed[0] != VERSION) {
      throw new WrongKeyException("not a value sealed by this version");
    }
    try {
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      c.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, Arrays.copyOfRange(sealed, 1, 13)));
      c.updateAAD(context.getBytes(StandardCharsets.UTF_8));
      return c.doFinal(sealed, 13, sealed.length - 13);
    } catch (AEADBadTagException e) {
      throw new WrongKeyException("the value does not open with this key (wrong passphrase or key, or altered data)");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM failed", e);
    }
  }

  /** A stored value does not open with this key. */
  public static final class WrongKeyException extends RuntimeException {
    public WrongKeyException(String message) {
      super(message);
    }
  }
}
