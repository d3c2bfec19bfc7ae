package org.civicsync.bench.micro;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.records.MutationRules;
import org.civicsync.core.records.RecordState;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.Fixtures;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/** The per-mutation work of a push, one piece at a time, on a realistic appointment. */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "-Xmx512m")
public class HotPaths {
  private static final String TENANT = "bench";

  private Mutation signed;
  private UUID deviceId;
  private Ed25519.PublicKey publicKey;
  private CollectionSchema appointments;
  private ObjectNode record;
  private MutationRules.Context context;
  private Mutation stale;
  private RecordState current;

  @Setup
  public void setUp() {
    Fixtures fx = new Fixtures(1);
    Ed25519.KeyPair keys = Ed25519.generate();
    deviceId = UUID.randomUUID();
    publicKey = keys.publicKey();
    UUID id = fx.uuid();
    signed = Envelopes.sign(fx.create(id), TENANT, deviceId, keys.privateKey());
    CollectionCatalog catalog = CollectionCatalog.of(CollectionCatalog.builtInDefinitions());
    appointments = catalog.find("appointments").orElseThrow();
    record = signed.data().deepCopy();
    record.put("status", "booked");
    // A change made against version 1 arriving after another device's change made version 2:
    // the server merges field by field against the base.
    RecordState base = new RecordState(1, false, record.deepCopy(), Instant.now(), Map.of());
    ObjectNode v2 = record.deepCopy();
    v2.put("patientPhone", "+94770000002");
    current = new RecordState(2, false, v2, Instant.now(), Map.of());
    stale = fx.update(id, 1, Fixtures.patch("status", "checked_in"));
    context = new MutationRules.Context(catalog, Instant.now(), Duration.ofHours(24), v -> v == 1 ? Optional.of(base) : Optional.empty());
  }

  /** The content digest of a mutation (SHA-256 of its RFC 8785 form): what idempotency compares. */
  @Benchmark
  public String canonicalHash() {
    return Digests.mutation(signed);
  }

  /** A created record checked against its collection's JSON Schema. */
  @Benchmark
  public Object schemaValidation() {
    return appointments.check(record);
  }

  /** The Ed25519 signature of a mutation checked with the device's public key. */
  @Benchmark
  public boolean signatureVerification() {
    return Envelopes.verify(signed, TENANT, deviceId, publicKey);
  }

  private byte[] message;
  private byte[] rawKey;
  private byte[] rawSignature;
  private org.bouncycastle.math.ec.rfc8032.Ed25519.PublicPoint point;

  @Setup
  public void setUpRaw() {
    message = Envelopes.mutationSigningInput(TENANT, deviceId, signed);
    rawKey = java.util.Base64.getUrlDecoder().decode(publicKey.encoded());
    rawSignature = java.util.Base64.getUrlDecoder().decode(signed.signature());
    point = org.bouncycastle.math.ec.rfc8032.Ed25519.validatePublicKeyFullExport(rawKey, 0);
  }

  /** The same check with Bouncy Castle's RFC 8032 code and the device's key decoded once. */
  @Benchmark
  public boolean signatureVerificationBouncyCastle() {
    return org.bouncycastle.math.ec.rfc8032.Ed25519.verify(rawSignature, 0, point, message, 0, message.length);
  }

  private static final int PUSH = 500;
  private byte[][] pushSignatures;
  private byte[][] pushMessages;
  private final org.civicsync.server.push.SignatureCheck check = new org.civicsync.server.push.SignatureCheck();

  @Setup
  public void setUpPush() {
    Fixtures fx = new Fixtures(2);
    Ed25519.KeyPair keys = Ed25519.generate();
    publicKeyOfPush = keys.publicKey();
    pushSignatures = new byte[PUSH][];
    pushMessages = new byte[PUSH][];
    for (int i = 0; i < PUSH; i++) {
      Mutation m = Envelopes.sign(fx.create(fx.uuid()), TENANT, deviceId, keys.privateKey());
      pushSignatures[i] = java.util.Base64.getUrlDecoder().decode(m.signature());
      pushMessages[i] = Envelopes.mutationSigningInput(TENANT, deviceId, m);
    }
  }

  private Ed25519.PublicKey publicKeyOfPush;

  /** A push's 500 signatures checked together, as the push path does (per signature, on one core). */
  @Benchmark
  @org.openjdk.jmh.annotations.OperationsPerInvocation(PUSH)
  public boolean[] signatureVerificationBatchOf500() {
    return check.verifySigned(pushSignatures, pushMessages, publicKeyOfPush, false);
  }

  /** A stale update decided against the current state and its base: the field-level merge. */
  @Benchmark
  public Object merge() {
    return MutationRules.decide(context, stale, Optional.of(current));
  }
}
