package org.civicsync.core.signing;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.canonical.Jcs;
import org.civicsync.core.json.Json;

/** The byte strings devices sign (docs/protocol.md, "Signed envelopes"). */
public final class Envelopes {
  /** Domain-separation prefix of a mutation's signing input. */
  public static final String MUTATION_V1 = "civicsync-mutation-v1";
  /** Domain-separation prefix of a token challenge's signing input. */
  public static final String TOKEN_V1 = "civicsync-token-v1";

  private Envelopes() {}

  /**
   * The mutation without its signature, as a JSON object: its canonical form everywhere (signing
   * input, idempotency digest).
   */
  public static ObjectNode unsigned(Mutation mutation) {
    ObjectNode tree = Json.mapper().valueToTree(mutation);
    tree.remove("signature");
    return tree;
  }

  /**
   * UTF-8 of {@code "civicsync-mutation-v1\n" + tenantId + "\n" + deviceId + "\n" +
   * JCS(mutation without signature)}.
   */
  public static byte[] mutationSigningInput(String tenantId, UUID deviceId, Mutation mutation) {
    return mutationSigningInput(tenantId, deviceId, Jcs.canonicalBytes(unsigned(mutation)));
  }

  /**
   * The same, from the mutation's canonical form already computed ({@code
   * Jcs.canonicalBytes(unsigned(mutation))}, which is also what its content digest hashes).
   */
  public static byte[] mutationSigningInput(String tenantId, UUID deviceId, byte[] canonicalUnsigned) {
    String head = MUTATION_V1 + "\n" + tenantId + "\n" + deviceId + "\n";
    byte[] a = head.getBytes(StandardCharsets.UTF_8);
    byte[] b = canonicalUnsigned;
    byte[] out = new byte[a.length + b.length];
    System.arraycopy(a, 0, out, 0, a.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  /** UTF-8 of {@code "civicsync-token-v1\n" + tenantId + "\n" + deviceId + "\n" + challenge}. */
  public static byte[] tokenSigningInput(String tenantId, UUID deviceId, String challenge) {
    return (TOKEN_V1 + "\n" + tenantId + "\n" + deviceId + "\n" + challenge).getBytes(StandardCharsets.UTF_8);
  }

  /** The mutation signed by {@code key} for this tenant and device. */
  public static Mutation sign(Mutation mutation, String tenantId, UUID deviceId, Ed25519.PrivateKey key) {
    return mutation.withSignature(key.sign(mutationSigningInput(tenantId, deviceId, mutation)));
  }

  /** Whether the mutation carries a valid signature of this tenant's device holding {@code key}. */
  public static boolean verify(Mutation mutation, String tenantId, UUID deviceId, Ed25519.PublicKey key) {
    return mutation.signature() != null && key.verify(mutationSigningInput(tenantId, deviceId, mutation), mutation.signature());
  }
}
