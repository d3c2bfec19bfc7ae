package org.civicsync.core.signing;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.json.Json;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The published signature vectors (contracts: vectors/signatures-v1.json) hold for this code. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SignatureVectorTest {
  private JsonNode v;
  private Ed25519.KeyPair keys;

  @BeforeAll
  void load() throws Exception {
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("org/civicsync/contracts/vectors/signatures-v1.json")) {
      v = Json.mapper().readTree(in);
    }
    keys = Ed25519.fromSeed(v.at("/keyPair/privateKeySeed").asText());
  }

  @Test
  void keyPairIsRfc8032TestOne() {
    assertThat(keys.publicKey().encoded()).isEqualTo(v.at("/keyPair/publicKey").asText());
    String empty = keys.privateKey().sign(new byte[0]);
    assertThat(HexFormat.of().formatHex(java.util.Base64.getUrlDecoder().decode(empty))).isEqualTo(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
    assertThat(Ed25519.privateKey(keys.privateKey().encoded()).sign(new byte[0])).as("the signing key alone signs the same").isEqualTo(empty);
    assertThat(Ed25519.privateKey(keys.privateKey().encoded()).encoded()).isEqualTo(keys.privateKey().encoded());
  }

  @Test
  void mutationSigningInputSignatureAndDigestMatchTheVector() throws Exception {
    Mutation m = Json.mapper().treeToValue(v.at("/mutation/mutation"), Mutation.class);
    String tenant = v.at("/mutation/tenantId").asText();
    UUID device = UUID.fromString(v.at("/mutation/deviceId").asText());
    assertThat(new String(Envelopes.mutationSigningInput(tenant, device, m), StandardCharsets.UTF_8))
        .isEqualTo(v.at("/mutation/signingInput").asText());
    assertThat(Envelopes.sign(m.withSignature(null), tenant, device, keys.privateKey()).signature())
        .isEqualTo(v.at("/mutation/signature").asText()).isEqualTo(m.signature());
    assertThat(Envelopes.verify(m, tenant, device, keys.publicKey())).isTrue();
    assertThat(Digests.mutation(m)).as("the digest ignores the signature").isEqualTo(v.at("/mutation/contentDigest").asText())
        .isEqualTo(Digests.mutation(m.withSignature(null)));
  }

  @Test
  void signatureFailsForAnotherTenantDeviceOrAnyChangedContent() throws Exception {
    Mutation m = Json.mapper().treeToValue(v.at("/mutation/mutation"), Mutation.class);
    String tenant = v.at("/mutation/tenantId").asText();
    UUID device = UUID.fromString(v.at("/mutation/deviceId").asText());
    assertThat(Envelopes.verify(m, "other-tenant", device, keys.publicKey())).isFalse();
    assertThat(Envelopes.verify(m, tenant, UUID.randomUUID(), keys.publicKey())).isFalse();
    ObjectNode data = m.data().deepCopy();
    data.put("clinicId", "clinic-badulla-04");
    Mutation altered = new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), m.recordId(), m.op(), m.baseVersion(), data, m.hlc(),
        m.clientTime(), m.signature());
    assertThat(Envelopes.verify(altered, tenant, device, keys.publicKey())).isFalse();
    Mutation reseq = new Mutation(m.mutationId(), m.deviceSeq() + 1, m.collection(), m.recordId(), m.op(), m.baseVersion(), m.data(),
        m.hlc(), m.clientTime(), m.signature());
    assertThat(Envelopes.verify(reseq, tenant, device, keys.publicKey())).isFalse();
    assertThat(Envelopes.verify(m, tenant, device, Ed25519.generate().publicKey())).as("another device's key").isFalse();
    assertThat(Envelopes.verify(m.withSignature(null), tenant, device, keys.publicKey())).isFalse();
    assertThat(Envelopes.verify(m.withSignature("AAAA"), tenant, device, keys.publicKey())).isFalse();
  }

  @Test
  void tokenSigningInputAndSignatureMatchTheVector() {
    String tenant = v.at("/token/tenantId").asText();
    UUID device = UUID.fromString(v.at("/token/deviceId").asText());
    byte[] input = Envelopes.tokenSigningInput(tenant, device, v.at("/token/challenge").asText());
    assertThat(new String(input, StandardCharsets.UTF_8)).isEqualTo(v.at("/token/signingInput").asText());
    assertThat(keys.privateKey().sign(input)).isEqualTo(v.at("/token/signature").asText());
    assertThat(keys.publicKey().verify(input, v.at("/token/signature").asText())).isTrue();
  }

  @Test
  void malformedPublicKeysAreRefused() {
    assertThat(Ed25519.publicKey("too-short")).isEmpty();
    assertThat(Ed25519.publicKey(null)).isEmpty();
    assertThat(Ed25519.publicKey("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")).isEmpty();
    assertThat(Ed25519.publicKey("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")).isPresent();
    assertThat(Ed25519.publicKey("A".repeat(43))).as("all zero: a point of small order").isEmpty();
    assertThat(Ed25519.publicKey("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).as("the identity").isEmpty();
  }

  @Test
  void malformedSignaturesAreRefused() {
    String good = keys.privateKey().sign("x".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    assertThat(Ed25519.signatureBytes(good)).get().satisfies(b -> assertThat(b).hasSize(64));
    assertThat(Ed25519.signatureBytes(null)).isEmpty();
    assertThat(Ed25519.signatureBytes(good.substring(1))).as("too short").isEmpty();
    assertThat(Ed25519.signatureBytes(good.substring(2) + "==")).as("padded").isEmpty();
    assertThat(Ed25519.signatureBytes("+" + good.substring(1))).as("base64, not base64url").isEmpty();
    assertThat(Ed25519.signatureBytes(" " + good.substring(1))).as("a space").isEmpty();
    assertThat(Ed25519.signatureBytes("é" + good.substring(1))).as("not ASCII").isEmpty();
    // 64 bytes end in 4 bits of the last character: the other 2 must be zero (canonical form).
    char last = good.charAt(good.length() - 1);
    String nonCanonical = good.substring(0, good.length() - 1) + "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        .charAt(("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".indexOf(last) | 1));
    assertThat(Ed25519.signatureBytes(nonCanonical)).as("non-canonical last character").isEmpty();
  }
}
