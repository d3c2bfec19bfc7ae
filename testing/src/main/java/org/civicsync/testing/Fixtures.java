package org.civicsync.testing;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Random;
import java.util.UUID;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.ids.Uuid7;
import org.civicsync.core.json.Json;

/** Realistic clinic mutations, reproducible from a seeded {@link Random}. */
public final class Fixtures {
  private static final String[] GIVEN = {"Nimali", "Kasun", "Tharindu", "Dilani", "Ruwan", "Chamari", "Sunil", "Ishara"};
  private static final String[] FAMILY = {"Perera", "Fernando", "Silva", "Jayasinghe", "Bandara", "Wickramasinghe"};

  private static final java.util.concurrent.atomic.AtomicLong SLOTS = new java.util.concurrent.atomic.AtomicLong();

  private final Random random;
  private long deviceSeq;
  private final String deviceId;
  private Hlc clock;
  private boolean timeOrdered;

  public Fixtures(long seed) {
    this.random = new Random(seed);
    this.deviceId = "dev" + Long.toHexString(seed & 0xffffffffL);
  }

  /** The next clock reading of this fixture's device (wall time, ticking). */
  public String hlc() {
    clock = Hlc.tick(clock, System.currentTimeMillis(), deviceId);
    return clock.toString();
  }

  /** A mutation with an arbitrary collection, op and data, from this fixture's device. */
  public Mutation mutation(String collection, UUID recordId, MutationOp op, long baseVersion, ObjectNode data) {
    return new Mutation(uuid(), ++deviceSeq, collection, recordId, op, baseVersion, data, hlc(), now());
  }

  /**
   * From now on, ids as the SDKs mint them: time-ordered ({@link Uuid7}, the wall clock's
   * milliseconds), for measurements where the database's indexes see what devices send. Ids are
   * then no longer reproducible from the seed; by default they are (random, version 4).
   */
  public Fixtures timeOrderedIds() {
    timeOrdered = true;
    return this;
  }

  public UUID uuid() {
    if (timeOrdered) {
      return Uuid7.next(System.currentTimeMillis(), random);
    }
    return new UUID(random.nextLong(), random.nextLong() & 0x0fffffffffffffffL | 0x4000000000000000L);
  }

  /** Data of a valid appointment. */
  public ObjectNode appointment() {
    ObjectNode d = Json.mapper().createObjectNode();
    d.put("patientName", GIVEN[random.nextInt(GIVEN.length)] + " " + FAMILY[random.nextInt(FAMILY.length)]);
    d.put("patientPhone", "+9477" + (1000000 + random.nextInt(8999999)));
    d.put("clinicId", "clinic-" + (1 + random.nextInt(40)));
    // A slot no other fixture in this JVM uses: appointments allow one booking per clinic and slot.
    d.put("slotStart", Instant.parse("2026-12-01T03:00:00Z").plus(SLOTS.incrementAndGet() * 15L, ChronoUnit.MINUTES).toString());
    d.putArray("notes").add("booked offline");
    return d;
  }

  public Mutation create(UUID recordId) {
    return create(recordId, appointment());
  }

  public Mutation create(UUID recordId, ObjectNode data) {
    return mutation("appointments", recordId, MutationOp.CREATE, 0, data);
  }

  public Mutation update(UUID recordId, long baseVersion, ObjectNode patch) {
    return mutation("appointments", recordId, MutationOp.UPDATE, baseVersion, patch);
  }

  public Mutation delete(UUID recordId, long baseVersion) {
    return mutation("appointments", recordId, MutationOp.DELETE, baseVersion, null);
  }

  /** A patch setting one string field. */
  public static ObjectNode patch(String field, String value) {
    ObjectNode p = Json.mapper().createObjectNode();
    p.put(field, value);
    return p;
  }

  private static String now() {
    return Instant.now().truncatedTo(ChronoUnit.MILLIS).toString();
  }
}
