package org.civicsync.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.PushRequest;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.testing.Fixtures;

/**
 * Realistic clinic work, prepared before any clock starts: per device, batches of appointment
 * creates, each mutation signed with the device's key, each batch serialised and gzip-compressed
 * as a device would send it. Seeded: the same run twice sends the same records.
 */
final class Workload {
  /** One push: the mutations as sent and the request body. */
  record Batch(Api.Device device, List<Mutation> mutations, byte[] json, byte[] gzipped) {}

  /** Per device, its batches in the order it must send them (deviceSeq order). */
  final List<List<Batch>> perDevice = new ArrayList<>();
  final int mutations;

  Workload(String tenantId, List<Api.Device> devices, int batchesPerDevice, int batchSize, long seed) {
    // Devices are prepared in parallel, each from its own seeded fixtures (the result does not
    // depend on the order); signing uses Bouncy Castle, whose Ed25519 signatures are the JDK's
    // byte for byte (Ed25519 is deterministic) at a fraction of the time.
    List<List<Batch>> prepared = java.util.stream.IntStream.range(0, devices.size()).parallel().mapToObj(d -> {
      Api.Device dev = devices.get(d);
      // Record and mutation ids as the SDKs mint them (time-ordered): the database's indexes on
      // them cost what devices' pushes cost them.
      Fixtures fx = new Fixtures(seed * 1_000 + d).timeOrderedIds();
      byte[] sk = java.util.Base64.getUrlDecoder().decode(dev.keys().privateKey().encoded());
      List<Batch> mine = new ArrayList<>();
      for (int b = 0; b < batchesPerDevice; b++) {
        List<Mutation> ms = new ArrayList<>(batchSize);
        for (int i = 0; i < batchSize; i++) {
          UUID id = fx.uuid();
          ms.add(sign(fx.create(id), tenantId, dev.id(), sk));
        }
        byte[] json = json(new PushRequest(ms));
        mine.add(new Batch(dev, ms, json, Api.gzip(json)));
      }
      return mine;
    }).toList();
    perDevice.addAll(prepared);
    this.mutations = devices.size() * batchesPerDevice * batchSize;
  }

  /** {@link Envelopes#sign}, the same bytes, with Bouncy Castle. */
  static Mutation sign(Mutation m, String tenantId, UUID deviceId, byte[] seed) {
    byte[] message = Envelopes.mutationSigningInput(tenantId, deviceId, m);
    byte[] sig = new byte[64];
    org.bouncycastle.math.ec.rfc8032.Ed25519.sign(seed, 0, message, 0, message.length, sig, 0);
    return m.withSignature(java.util.Base64.getUrlEncoder().withoutPadding().encodeToString(sig));
  }

  private Workload(List<List<Batch>> perDevice) {
    this.perDevice.addAll(perDevice);
    this.mutations = perDevice.stream().flatMap(List::stream).mapToInt(b -> b.mutations().size()).sum();
  }

  /** This workload's devices and {@code other}'s, sending at the same time. */
  Workload and(Workload other) {
    List<List<Batch>> both = new ArrayList<>(perDevice);
    both.addAll(other.perDevice);
    return new Workload(both);
  }

  /** The first {@code batches} batches of every device. */
  Workload first(int batches) {
    return new Workload(perDevice.stream().map(l -> l.subList(0, Math.min(batches, l.size()))).toList());
  }

  List<Batch> all() {
    return perDevice.stream().flatMap(List::stream).toList();
  }

  static byte[] json(Object value) {
    try {
      return Json.mapper().writeValueAsBytes(value);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }
}
