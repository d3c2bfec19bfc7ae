package org.civicsync.server.push;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.util.Base64;
import java.util.Random;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.junit.jupiter.api.Test;

/** The push path's signature check decides exactly as the JDK's Ed25519 (core's {@link Envelopes#verify}). */
class SignatureCheckTest {
  private final SignatureCheck check = new SignatureCheck();

  @Test
  void theContractsVectorVerifiesAndItsAlterationsDoNot() throws Exception {
    JsonNode v;
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("org/civicsync/contracts/vectors/signatures-v1.json")) {
      v = Json.mapper().readTree(in);
    }
    Ed25519.KeyPair keys = Ed25519.fromSeed(v.at("/keyPair/privateKeySeed").asText());
    Mutation m = Json.mapper().treeToValue(v.at("/mutation/mutation"), Mutation.class);
    String tenant = v.at("/mutation/tenantId").asText();
    UUID device = UUID.fromString(v.at("/mutation/deviceId").asText());
    assertThat(check.verify(m, tenant, device, keys.publicKey())).isTrue();
    assertThat(check.verify(m, "other-tenant", device, keys.publicKey())).isFalse();
    assertThat(check.verify(m, tenant, UUID.randomUUID(), keys.publicKey())).isFalse();
    assertThat(check.verify(m.withSignature(null), tenant, device, keys.publicKey())).isFalse();
    assertThat(check.verify(m.withSignature("AAAA"), tenant, device, keys.publicKey())).isFalse();
    assertThat(check.verify(m, tenant, device, Ed25519.generate().publicKey())).isFalse();
  }

  @Test
  void randomSignaturesAndForgeriesGetTheJdksAnswer() {
    long seed = new Random().nextLong();
    Random random = new Random(seed);
    Ed25519.KeyPair[] keys = {Ed25519.generate(), Ed25519.generate(), Ed25519.generate()};
    for (int i = 0; i < 300; i++) {
      Ed25519.KeyPair signer = keys[random.nextInt(keys.length)];
      Ed25519.KeyPair checker = random.nextInt(4) == 0 ? keys[random.nextInt(keys.length)] : signer;
      UUID device = new UUID(random.nextLong(), random.nextLong());
      ObjectNode data = Json.mapper().createObjectNode().put("patientName", "p" + random.nextInt()).put("n", random.nextInt(100));
      Mutation m = Envelopes.sign(new Mutation(new UUID(random.nextLong(), random.nextLong()), 1 + random.nextInt(1000), "appointments",
          new UUID(random.nextLong(), random.nextLong()), MutationOp.CREATE, 0, data, "000001700000000-00000-d", "2026-12-06T00:00:00Z"),
          "t", device, signer.privateKey());
      Mutation probe = switch (random.nextInt(4)) {
        case 0 -> m;
        case 1 -> m.withSignature(flip(m.signature(), random)); // a damaged signature
        case 2 -> new Mutation(m.mutationId(), m.deviceSeq() + 1, m.collection(), m.recordId(), m.op(), m.baseVersion(), m.data(), m.hlc(),
            m.clientTime(), m.signature()); // altered content
        default -> m.withSignature(nonCanonical(m.signature())); // S + L: the same point, not canonical
      };
      boolean jdk = Envelopes.verify(probe, "t", device, checker.publicKey());
      assertThat(check.verify(probe, "t", device, checker.publicKey())).as("case %d (seed %d)", i, seed).isEqualTo(jdk);
    }
  }

  private static String flip(String signature, Random random) {
    byte[] b = Base64.getUrlDecoder().decode(signature);
    b[random.nextInt(b.length)] ^= (byte) (1 << random.nextInt(8));
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }

  /** The signature with L added to its S (little-endian), which RFC 8032 verifiers must refuse. */
  private static String nonCanonical(String signature) {
    byte[] b = Base64.getUrlDecoder().decode(signature);
    java.math.BigInteger l = java.math.BigInteger.TWO.pow(252).add(new java.math.BigInteger("27742317777372353535851937790883648493"));
    byte[] sLe = java.util.Arrays.copyOfRange(b, 32, 64);
    byte[] sBe = new byte[32];
    for (int i = 0; i < 32; i++) {
      sBe[i] = sLe[31 - i];
    }
    java.math.BigInteger s = new java.math.BigInteger(1, sBe).add(l);
    byte[] out = s.toByteArray();
    byte[] le = new byte[32];
    for (int i = 0; i < Math.min(32, out.length); i++) {
      le[i] = out[out.length - 1 - i];
    }
    System.arraycopy(le, 0, b, 32, 32);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
  }
}
