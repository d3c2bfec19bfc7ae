package org.civicsync.core.canonical;

import com.fasterxml.jackson.databind.JsonNode;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.json.Json;

/** SHA-256 digests: of canonical JSON and of bytes, as lowercase hex (and, for upload keys, base64url). */
public final class Digests {
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private Digests() {}

  /**
   * The content digest of a mutation: SHA-256 of the JCS form of the mutation object without its
   * signature (the signature is bound to that content, so it adds nothing). Two sends of the same
   * mutation have the same digest however their JSON was spaced or ordered.
   */
  public static String mutation(Mutation mutation) {
    com.fasterxml.jackson.databind.node.ObjectNode tree = Json.mapper().valueToTree(mutation);
    tree.remove("signature");
    return sha256Hex(Jcs.canonicalBytes(tree));
  }

  /** SHA-256 of the JCS form of any JSON value. */
  public static String of(JsonNode node) {
    return sha256Hex(Jcs.canonicalBytes(node));
  }

  /** SHA-256 of bytes, as 64 lowercase hex digits. */
  public static String sha256Hex(byte[] bytes) {
    byte[] d = sha256().digest(bytes);
    char[] out = new char[d.length * 2];
    for (int i = 0; i < d.length; i++) {
      out[2 * i] = HEX[(d[i] >> 4) & 0xF];
      out[2 * i + 1] = HEX[d[i] & 0xF];
    }
    return new String(out);
  }

  /**
   * SHA-256 of bytes, as unpadded base64url (43 characters): how a resumable push names its body
   * ({@code Upload-Key}, protocol.md "Resumable uploads"), the same on device and server.
   */
  public static String sha256Base64Url(byte[] bytes) {
    return java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(sha256().digest(bytes));
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every Java platform has SHA-256", e);
    }
  }
}
