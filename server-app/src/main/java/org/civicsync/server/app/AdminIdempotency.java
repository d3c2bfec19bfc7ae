package org.civicsync.server.app;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.concurrent.ConcurrentHashMap;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;
import java.util.function.Supplier;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.json.Json;
import org.civicsync.server.ApiException;
import org.civicsync.server.store.ServerStore;

/**
 * {@code Idempotency-Key} on admin writes: the same key with the same route and body answers the
 * first response again (status and body); with another route or body it is refused with 422. Kept
 * in the store's settings, so it survives restarts.
 *
 * <p>First answers can hold secrets (an enrollment code, an API client's token), so they are
 * stored encrypted (AES-256-GCM) under a key derived from the Idempotency-Key itself: only a caller
 * holding that key can have the answer again; the database holds ciphertext and a digest of the
 * key. Clients should make keys random (a UUID), as for every idempotency key.
 */
final class AdminIdempotency {
  private final ServerStore store;
  private static final SecureRandom RANDOM = new SecureRandom();
  private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();

  AdminIdempotency(ServerStore store) {
    this.store = store;
  }

  /** A response to remember. */
  record Answer(int status, Object body) {}

  Answer run(String key, String route, JsonNode body, Supplier<Answer> work) {
    String id = "idempotency.admin." + Digests.sha256Hex(("id\n" + key).getBytes(StandardCharsets.UTF_8));
    String digest = Digests.sha256Hex((route + "\n" + Json.mapper().valueToTree(body)).getBytes(StandardCharsets.UTF_8));
    Object lock = locks.computeIfAbsent(id, k -> new Object());
    synchronized (lock) {
      try {
        var seen = store.setting(id);
        if (seen.isPresent()) {
          JsonNode first = Json.mapper().readTree(seen.get());
          if (!first.path("digest").asText().equals(digest)) {
            throw new ApiException(ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used for another admin request; the first one stands", "Idempotency-Key");
          }
          byte[] plain = crypt(Cipher.DECRYPT_MODE, key, Base64.getDecoder().decode(first.path("sealed").asText()));
          return new Answer(first.path("status").asInt(), Json.mapper().readTree(plain));
        }
        Answer a = work.get();
        ObjectNode rec = Json.mapper().createObjectNode().put("digest", digest).put("status", a.status());
        byte[] answer = Json.mapper().writeValueAsBytes(a.body());
        rec.put("sealed", Base64.getEncoder().encodeToString(crypt(Cipher.ENCRYPT_MODE, key, answer)));
        store.putSetting(id, rec.toString());
        return a;
      } catch (java.io.IOException e) {
        throw new IllegalStateException("stored idempotent answer is not JSON", e);
      } finally {
        locks.remove(id, lock);
      }
    }
  }

  /**
   * AES-256-GCM under SHA-256("seal\n" + key): encrypting prepends a random 12-byte nonce,
   * decrypting expects it.
   */
  private static byte[] crypt(int mode, String key, byte[] in) {
    try {
      SecretKeySpec k = new SecretKeySpec(MessageDigest.getInstance("SHA-256").digest(("seal\n" + key).getBytes(StandardCharsets.UTF_8)), "AES");
      Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
      if (mode == Cipher.ENCRYPT_MODE) {
        byte[] nonce = new byte[12];
        RANDOM.nextBytes(nonce);
        c.init(mode, k, new GCMParameterSpec(128, nonce));
        byte[] sealed = c.doFinal(in);
        byte[] out = new byte[12 + sealed.length];
        System.arraycopy(nonce, 0, out, 0, 12);
        System.arraycopy(sealed, 0, out, 12, sealed.length);
        return out;
      }
      c.init(mode, k, new GCMParameterSpec(128, in, 0, 12));
      return c.doFinal(in, 12, in.length - 12);
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException("stored idempotent answer cannot be sealed or opened", e);
    }
  }
}
