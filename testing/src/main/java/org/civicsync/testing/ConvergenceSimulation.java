package org.civicsync.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.InboxItemView;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.ResolveRequest;
import org.civicsync.contracts.ResolveResponse;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.canonical.Jcs;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.conflicts.FieldRule;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;
import org.civicsync.server.ApiException;
import org.civicsync.server.inbox.InboxService;
import org.civicsync.server.pull.PullService;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.InboxItem;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.PulledRecord;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;

/**
 * The seeded, randomised convergence test of issue 3: simulated field devices edit shared
 * {@code appointments} offline, sync through the real {@link PushService}, {@link PullService} and
 * {@link InboxService} over any {@link ServerStore}, with faults on the way, and at the end every
 * device must hold exactly what the server holds.
 *
 * <h2>What is simulated</h2>
 *
 * <p>Everything is driven by one {@code java.util.Random(seed)}: the same seed gives the same run
 * (the same mutations, deliveries, faults and resolutions, so the same outcomes). Each device keeps
 *
 * <ul>
 *   <li>a <em>local copy</em> of each live record: its data and the version it derives from, which
 *       is always a version the server gave it (0 for a create not yet answered);
 *   <li>the latest <em>server state</em> it knows of each record (from pulls, results and outcomes),
 *       used to restore the local copy when a change of its own comes back not applied;
 *   <li>an <em>outbox</em> that follows the client rules of protocol.md ("Several offline edits of
 *       one record") and conflicts.md section 9: at most one mutation per record; while it is
 *       unsent, further edits of the record are folded into it (same {@code mutationId}, same
 *       {@code deviceSeq}, new {@code hlc}); once it is sent its content is frozen and, until its
 *       result is known (a {@code held} answer is not a result), the device makes <em>no</em> edit
 *       of that record (the edit is simply not made). Two more edits are not made, because folding
 *       them would be wrong: deleting a record whose create is unsent (the create would vanish
 *       unsent and leave a gap in the device's {@code deviceSeq}s, which the hold queue would wait
 *       on — a client that numbers mutations when first sent avoids this), and a status move
 *       that, folded into the pending change, would not be a forward move from the status the
 *       change was based on;
 *   <li>its own pull cursor and outcomes cursor, and a hybrid logical clock.
 * </ul>
 *
 * <p>Per round, in random device order, devices make random offline edits — creates (mostly at a
 * unique slot, sometimes at one of a few popular slots, which exercises {@code CAPACITY_EXCEEDED}),
 * updates of {@code patientPhone}/{@code patientName}/{@code clinicId} (both-sides changes park as
 * conflicts under {@code merge}), status moves valid from the device's local status (stale ones are
 * overridden by the server), note appends and occasional deletes — and sync: push, pull (partial
 * pages), read {@code /outcomes}. Faults: a push whose response is lost after the server committed
 * it (the device retries the same mutations later), pushes sent twice, a copy of a push delivered
 * again some rounds later, a mutation duplicated inside one push, pushes of a random subset of the
 * outbox (so later mutations of a device arrive before earlier ones and are {@code held} until the
 * gap fills; every {@code deviceSeq} a device hands out is sent eventually). Now and then a supervisor resolves random open inbox items ({@code keepServer},
 * {@code takeClient}, or {@code edit} with valid data built from the current record); a
 * {@code RESOLUTION_REJECTED} refusal is accepted and leaves the item open.
 *
 * <p>Devices act on answers as conflicts.md section 9 says: {@code applied} keeps the local copy at
 * the new version; {@code merged} takes {@code record}; {@code conflict} takes {@code serverRecord}
 * and drops the change as final; {@code rejected} drops the change and restores the server's state
 * ({@code serverRecord} if present, else the latest state the device knows, else removes a record
 * the server never had). A newer server state learnt meanwhile (a pull while the change was in
 * flight) wins over the state a result names, as a replay may name an old one. A pull never
 * overwrites a record with a pending or in-flight mutation; otherwise the server's state is taken
 * (a tombstone removes the local copy). An outcome read from {@code /outcomes} — the decision on a
 * held mutation, or how a person resolved a parked or rejected one — is applied like a result.
 *
 * <h2>What it proves</h2>
 *
 * <p>After the rounds, faults stop, every device pushes until its outbox is empty and every result
 * is known, reads its outcomes and pulls to the end. Then:
 *
 * <ol>
 *   <li><b>Convergence</b>: every device's local copy of every record equals the server's (same
 *       version, data equal as canonical JSON, {@link Jcs}); tombstoned records are absent locally,
 *       and no device holds a record the server does not have live.
 *   <li><b>Exactly one final outcome per mutation</b>: every mutation sent got exactly one
 *       decision ({@code applied}, {@code merged}, {@code conflict} or {@code rejected}), which is
 *       also what the event log holds for it: answered once without {@code replayed}, or, for a
 *       mutation held behind a gap, released into its device's outcomes feed. Before the decision
 *       it may only be answered {@code held} (once without {@code replayed}); after it, every answer
 *       (retries, duplicates, delayed copies) says {@code replayed: true} and equals the decision,
 *       or — once a person resolved the parked or rejected change — its single final outcome, which
 *       is also what {@code /outcomes} tells its device. Each parked or rejected mutation has
 *       exactly one inbox item, which matches it. Checked online, answer by answer; the oracle sees
 *       every answer, also those the device never receives.
 *   <li><b>No applied change lost, none applied twice</b>: each {@code mutationId} appears at most
 *       once in the event log; for each record, the versions named by the results of applied and
 *       merged mutations and by resolutions are exactly {@code 1..v} where {@code v} is the server's
 *       version; the log's writes of the record are versions {@code 1..v} once each, and the write
 *       of an applied or merged mutation is at the version its result named.
 *   <li>Along the way: the server never shows two different states under one version of a record
 *       (pulls, results, outcomes, resolutions and the devices' own prediction of an {@code
 *       applied} change are all compared), and across the record's versions in the log, every
 *       version a device's mutation wrote keeps the field kinds: no {@code notes} item leaves the
 *       array, and {@code status} moves only along its declared transitions (after a deletion the
 *       record starts afresh; a person's resolution is obeyed as it is and not checked, as
 *       conflicts.md section 12 says).
 * </ol>
 *
 * <p>Prints nothing. A violation throws an {@link AssertionError} whose message starts with {@code
 * "seed <seed>: "} and ends with the last events of the run.
 *
 * <p>The devices must be enrolled in one tenant that has no changes yet (a fresh tenant per run).
 * The services may run on any clock within a few hours of real time that does not move past the
 * hold window during the run (e.g. the system clock, or a {@link FakeClock} left alone). Clocks: mutation {@code hlc}s are the real time at the start of the run plus a simulated offset
 * from 10 to at most 50 minutes that advances by at least a millisecond per edit, so no two edits
 * share a clock reading, every edit sorts after the server's own stamps (resolutions use the server
 * clock) and all stay far inside the default 24 h {@code CLOCK_SKEW} limit.
 */
public final class ConvergenceSimulation {
  private static final String COLLECTION = "appointments";
  private static final List<String> CLINICS = List.of("clinic-1", "clinic-2", "clinic-3", "clinic-4", "clinic-5", "clinic-6");
  /** Slots many devices book: two bookings of one of them at {@code clinic-1} breach capacity. */
  private static final List<String> POPULAR_SLOTS =
      List.of("2027-01-04T03:00:00Z", "2027-01-04T03:15:00Z", "2027-01-04T03:30:00Z");
  private static final Instant UNIQUE_SLOTS = Instant.parse("2027-02-01T03:00:00Z");
  private static final String[] GIVEN = {"Nimali", "Kasun", "Tharindu", "Dilani", "Ruwan", "Chamari", "Sunil", "Ishara"};
  private static final String[] FAMILY = {"Perera", "Fernando", "Silva", "Jayasinghe", "Bandara", "Wickramasinghe"};
  private static final long START_OFFSET_MS = 10 * 60_000L;
  private static final long MAX_OFFSET_MS = 50 * 60_000L;
  private static final int TRACE = 40;
  private static final int FINAL_SYNC = Integer.MAX_VALUE;

  private ConvergenceSimulation() {}

  /** What the run did, for the caller to check that it exercised something. */
  public record Report(int mutationsSent, int applied, int merged, int rejected, int conflicts, int resolved, int pushesLost,
      int duplicates) {}

  /** Runs the simulation; throws AssertionError (message starting with "seed <n>: ") on any violation. */
  public static Report run(long seed, ServerStore store, CollectionCatalog catalog, PushService push, PullService pull,
      InboxService inbox, List<Caller.Device> devices, int rounds) {
    Objects.requireNonNull(store, "store");
    Objects.requireNonNull(push, "push");
    Objects.requireNonNull(pull, "pull");
    Objects.requireNonNull(inbox, "inbox");
    if (devices.isEmpty()) {
      throw new IllegalArgumentException("the simulation needs at least one device");
    }
    String tenant = devices.get(0).tenantId();
    for (Caller.Device d : devices) {
      if (!d.tenantId().equals(tenant)) {
        throw new IllegalArgumentException("every device must belong to tenant " + tenant + "; " + d.deviceId() + " is in " + d.tenantId());
      }
    }
    CollectionSchema schema = catalog.find(COLLECTION)
        .orElseThrow(() -> new IllegalArgumentException("the catalog has no " + COLLECTION + " collection"));
    if (store.head(tenant) != 0) {
      throw new IllegalArgumentException("the simulation needs a tenant without changes; " + tenant + " has some");
    }
    Run run = new Run(seed, store, schema, push, pull, inbox, devices);
    try {
      run.simulate(rounds);
      run.settle();
      run.verify();
      return run.report();
    } catch (AssertionError e) {
      if (e.getMessage() != null && e.getMessage().startsWith("seed " + seed + ": ")) {
        throw e;
      }
      throw new AssertionError("seed " + seed + ": " + e.getMessage() + run.trace(), e);
    } catch (RuntimeException e) {
      throw new AssertionError("seed " + seed + ": unexpected " + e + " (" + run.when() + ")" + run.trace(), e);
    }
  }

  // ------------------------------------------------------------------ model

  /** A device's local copy of a live record; {@code version} 0 while its create is unanswered. */
  private record Local(long version, ObjectNode data) {}

  /** A record state the server gave out. */
  private record Known(long version, boolean deleted, ObjectNode data) {
    static Known of(ServerRecord r) {
      return new Known(r.version(), r.deleted(), r.deleted() ? null : r.data().deepCopy());
    }
  }

  /** The one outbox entry of a record. */
  private static final class Entry {
    Mutation m;
    boolean sent;
    /** The status of the state the update is based on (for moves folded into it). */
    final String baseStatus;

    Entry(Mutation m, String baseStatus) {
      this.m = m;
      this.baseStatus = baseStatus;
    }
  }

  private static final class Device {
    final int index;
    final Caller.Device caller;
    final String clockId;
    Hlc clock;
    long seq;
    final Map<UUID, Local> local = new LinkedHashMap<>();
    final Map<UUID, Known> known = new HashMap<>();
    final Map<UUID, Entry> outbox = new LinkedHashMap<>();
    Optional<String> cursor = Optional.empty();
    Optional<String> outcomesCursor = Optional.empty();
    /** The oracle's own outcomes cursor for this device (not the device's). */
    Optional<String> oracleOutcomesCursor = Optional.empty();

    Device(int index, Caller.Device caller) {
      this.index = index;
      this.caller = caller;
      this.clockId = caller.deviceId().toString();
    }
  }

  /** What the oracle knows of one mutation that was sent. */
  private static final class Sent {
    final Mutation m;
    final String canon;
    final Device device;
    /** The one decision on it (applied, merged, conflict or rejected), as first answered or released. */
    MutationResult decision;
    /** Whether it was ever answered {@code held}. */
    boolean held;
    MutationResult finalOutcome;

    Sent(Mutation m, Device device) {
      this.m = m;
      this.canon = canon(m);
      this.device = device;
    }
  }

  private record Delayed(Device device, List<Mutation> mutations, int atRound) {}

  // ------------------------------------------------------------------ the run

  private static final class Run {
    final long seed;
    final Random rnd;
    final ServerStore store;
    final CollectionSchema schema;
    final Map<String, List<String>> transitions = new LinkedHashMap<>();
    final FieldRule.Monotonic statusRule;
    final PushService push;
    final PullService pull;
    final InboxService inbox;
    final String tenant;
    final List<Device> devices = new ArrayList<>();
    final Map<UUID, Device> byId = new HashMap<>();
    final long wallBase = System.currentTimeMillis();
    long offset = START_OFFSET_MS;
    /** The round being played, or {@link #FINAL_SYNC} once faults have stopped. */
    int round = -1;
    int uniqueSlots;
    int notes;
    final Map<UUID, Sent> sent = new LinkedHashMap<>();
    /** Per record, per version, the canonical state the server gave out and who showed it. */
    final Map<UUID, Map<Long, String[]>> states = new HashMap<>();
    /** Per record, the versions results and resolutions say were written (or stand). */
    final Map<UUID, TreeSet<Long>> claimed = new HashMap<>();
    final List<Delayed> delayed = new ArrayList<>();
    final Deque<String> trace = new ArrayDeque<>();
    int pushesLost;
    int duplicates;
    int resolved;

    Run(long seed, ServerStore store, CollectionSchema schema, PushService push, PullService pull, InboxService inbox,
        List<Caller.Device> callers) {
      this.seed = seed;
      this.rnd = new Random(seed);
      this.store = store;
      this.schema = schema;
      this.push = push;
      this.pull = pull;
      this.inbox = inbox;
      this.tenant = callers.get(0).tenantId();
      for (int i = 0; i < callers.size(); i++) {
        Device d = new Device(i, callers.get(i));
        devices.add(d);
        byId.put(d.caller.deviceId(), d);
      }
      if (schema.policy().rule("status") instanceof FieldRule.Monotonic m) {
        statusRule = m;
        // Sorted: the rule's sets iterate in an order that differs between JVM runs.
        new TreeSet<>(m.transitions().keySet()).forEach(from -> transitions.put(from, new ArrayList<>(new TreeSet<>(m.transitions().get(from)))));
      } else {
        throw new IllegalArgumentException("appointments.status is expected to be monotonic");
      }
    }

    // ---------------------------------------------------------------- driving

    void simulate(int rounds) {
      for (round = 0; round < rounds; round++) {
        deliverDelayed(false);
        List<Device> order = new ArrayList<>(devices);
        java.util.Collections.shuffle(order, rnd);
        for (Device d : order) {
          if (rnd.nextInt(100) < 60) {
            int edits = 1 + rnd.nextInt(3);
            for (int i = 0; i < edits; i++) {
              edit(d);
            }
          }
          if (rnd.nextInt(100) < 35) {
            sync(d);
          }
        }
        if (rnd.nextInt(100) < 10) {
          supervise();
        }
      }
    }

    /** Faults stop; everything in flight is answered; every device catches up. */
    void settle() {
      round = FINAL_SYNC;
      deliverDelayed(true);
      for (int pass = 0; pass < 5; pass++) {
        for (Device d : devices) {
          if (!d.outbox.isEmpty()) {
            pushAll(d);
          }
        }
      }
      for (Device d : devices) {
        oracleOutcomes(d);
        readOutcomes(d);
      }
      for (Device d : devices) {
        pullAll(d, 500, false);
      }
    }

    void sync(Device d) {
      if (!d.outbox.isEmpty() && rnd.nextInt(100) < 85) {
        pushSome(d);
      }
      if (rnd.nextInt(100) < 70) {
        pullAll(d, 1 + rnd.nextInt(30), true);
      }
      if (rnd.nextInt(100) < 40) {
        oracleOutcomes(d);
        readOutcomes(d);
      }
    }

    // ---------------------------------------------------------------- offline edits

    void edit(Device d) {
      int dice = rnd.nextInt(100);
      if (d.local.isEmpty() || dice < 20) {
        create(d);
        return;
      }
      List<UUID> ids = new ArrayList<>(d.local.keySet());
      // Mostly the records the device got most recently: shared, so devices collide on them.
      int from = rnd.nextInt(100) < 70 ? Math.max(0, ids.size() - 10) : 0;
      UUID id = ids.get(from + rnd.nextInt(ids.size() - from));
      Entry e = d.outbox.get(id);
      if (e != null && e.sent) {
        note(d, "skip edit of " + s(id) + ": its mutation is in flight");
        return;
      }
      Local l = d.local.get(id);
      if (dice < 52) {
        ObjectNode p = Json.mapper().createObjectNode();
        int fields = 1 + rnd.nextInt(2);
        for (int i = 0; i < fields; i++) {
          switch (rnd.nextInt(3)) {
            case 0 -> {
              if (l.data().has("patientPhone") && rnd.nextInt(100) < 20) {
                p.putNull("patientPhone");
              } else {
                p.put("patientPhone", phone());
              }
            }
            case 1 -> p.put("patientName", name());
            default -> p.put("clinicId", CLINICS.get(rnd.nextInt(CLINICS.size())));
          }
        }
        change(d, id, l, e, p, "fields " + p);
      } else if (dice < 70) {
        if (e != null && e.m.op() == MutationOp.CREATE) {
          note(d, "skip status move of unsent create " + s(id));
          return;
        }
        String cur = l.data().path("status").asText("booked");
        String base = e != null ? e.baseStatus : cur;
        List<String> options = new ArrayList<>();
        for (String to : transitions.getOrDefault(cur, List.of())) {
          if (base != null && (base.equals(to) || transitions.getOrDefault(base, List.of()).contains(to))) {
            options.add(to);
          }
        }
        if (options.isEmpty()) {
          note(d, "skip status move of " + s(id) + " from " + cur + " (based on " + base + ")");
          return;
        }
        String to = options.get(rnd.nextInt(options.size()));
        ObjectNode p = Json.mapper().createObjectNode().put("status", to);
        change(d, id, l, e, p, "status " + cur + "->" + to);
      } else if (dice < 95) {
        ArrayNode list = l.data().has("notes") ? l.data().get("notes").deepCopy() : Json.mapper().createArrayNode();
        list.add(noteText("note by device " + d.index));
        ObjectNode p = Json.mapper().createObjectNode();
        p.set("notes", list);
        change(d, id, l, e, p, "note");
      } else {
        if (e != null && e.m.op() == MutationOp.CREATE) {
          note(d, "skip delete of unsent create " + s(id));
          return;
        }
        String hlc = tick(d);
        Mutation m = e == null
            ? new Mutation(uuid(), ++d.seq, COLLECTION, id, MutationOp.DELETE, l.version(), null, hlc, clientTime())
            : new Mutation(e.m.mutationId(), e.m.deviceSeq(), COLLECTION, id, MutationOp.DELETE, e.m.baseVersion(), null, hlc,
                clientTime());
        if (e == null) {
          d.outbox.put(id, new Entry(m, l.data().path("status").asText(null)));
        } else {
          e.m = m;
        }
        d.local.remove(id);
        note(d, "delete " + s(id) + " base " + m.baseVersion() + (e == null ? "" : " (folded)"));
      }
    }

    void create(Device d) {
      UUID id = uuid();
      ObjectNode data = Json.mapper().createObjectNode();
      data.put("patientName", name());
      if (rnd.nextInt(100) < 80) {
        data.put("patientPhone", phone());
      }
      if (rnd.nextInt(100) < 12) {
        data.put("clinicId", CLINICS.get(0));
        data.put("slotStart", POPULAR_SLOTS.get(rnd.nextInt(POPULAR_SLOTS.size())));
      } else {
        data.put("clinicId", CLINICS.get(rnd.nextInt(CLINICS.size())));
        data.put("slotStart", uniqueSlot());
      }
      data.put("status", "booked");
      data.putArray("notes").add(noteText("booked offline by device " + d.index));
      valid(data);
      Mutation m = new Mutation(uuid(), ++d.seq, COLLECTION, id, MutationOp.CREATE, 0, data, tick(d), clientTime());
      d.outbox.put(id, new Entry(m, null));
      d.local.put(id, new Local(0, data.deepCopy()));
      note(d, "create " + s(id) + " at " + data.get("clinicId").asText() + " " + data.get("slotStart").asText());
    }

    /** An edit of a live local record: a new mutation, or folded into the unsent one. */
    void change(Device d, UUID id, Local l, Entry e, ObjectNode patch, String what) {
      valid(MutationRules.patched(l.data(), patch));
      String hlc = tick(d);
      if (e == null) {
        Mutation m = new Mutation(uuid(), ++d.seq, COLLECTION, id, MutationOp.UPDATE, l.version(), patch, hlc, clientTime());
        d.outbox.put(id, new Entry(m, l.data().path("status").asText(null)));
      } else if (e.m.op() == MutationOp.CREATE) {
        e.m = new Mutation(e.m.mutationId(), e.m.deviceSeq(), COLLECTION, id, MutationOp.CREATE, 0,
            MutationRules.patched(e.m.data(), patch), hlc, clientTime());
      } else {
        ObjectNode folded = e.m.data().deepCopy();
        patch.fields().forEachRemaining(f -> folded.set(f.getKey(), f.getValue().deepCopy()));
        e.m = new Mutation(e.m.mutationId(), e.m.deviceSeq(), COLLECTION, id, MutationOp.UPDATE, e.m.baseVersion(), folded, hlc,
            clientTime());
      }
      d.local.put(id, new Local(l.version(), MutationRules.patched(l.data(), patch)));
      note(d, "edit " + s(id) + " base " + l.version() + ": " + what + (e == null ? "" : " (folded)"));
    }

    /** A client checks its edits against the collection's schema before queueing them. */
    void valid(ObjectNode data) {
      schema.check(data).ifPresent(v -> fail("a simulated edit breaks the schema at " + v.pointer() + ": " + v.message()
          + " (simulation bug): " + Jcs.canonicalString(data)));
    }

    // ---------------------------------------------------------------- push

    void pushSome(Device d) {
      List<Entry> batch = new ArrayList<>(d.outbox.values());
      if (batch.size() > 1 && rnd.nextInt(100) < 25) {
        List<Entry> some = new ArrayList<>();
        for (Entry e : batch) {
          if (rnd.nextInt(100) < 60) {
            some.add(e);
          }
        }
        batch = some.isEmpty() ? List.of(batch.get(rnd.nextInt(batch.size()))) : some;
      }
      List<Mutation> ms = outgoing(d, batch);
      if (rnd.nextInt(100) < 4) {
        ms.add(ms.get(rnd.nextInt(ms.size())));
        duplicates++;
        note(d, "a mutation twice in one push");
      }
      PushResponse first = send(d, ms);
      if (rnd.nextInt(100) < 12) {
        pushesLost++;
        note(d, "response lost");
      } else {
        deliver(d, first);
      }
      if (rnd.nextInt(100) < 8) {
        duplicates++;
        PushResponse again = send(d, ms);
        if (rnd.nextBoolean()) {
          deliver(d, again);
        }
      }
      if (rnd.nextInt(100) < 5) {
        duplicates++;
        delayed.add(new Delayed(d, List.copyOf(ms), round + 1 + rnd.nextInt(8)));
        note(d, "a copy of the push is delayed");
      }
    }

    void pushAll(Device d) {
      deliver(d, send(d, outgoing(d, new ArrayList<>(d.outbox.values()))));
    }

    /** Marks the entries sent (their content frozen from now on) and lists their mutations. */
    List<Mutation> outgoing(Device d, List<Entry> batch) {
      List<Mutation> ms = new ArrayList<>();
      for (Entry e : batch) {
        Sent known = sent.get(e.m.mutationId());
        if (!e.sent) {
          if (known != null) {
            fail("device " + d.index + " is about to send a second mutation with id " + e.m.mutationId() + " (simulation bug)");
          }
          e.sent = true;
          sent.put(e.m.mutationId(), new Sent(e.m, d));
        } else if (known == null || !known.canon.equals(canon(e.m))) {
          fail("device " + d.index + " resends mutation " + e.m.mutationId() + " with other content (simulation bug)");
        }
        ms.add(e.m);
      }
      return ms;
    }

    void deliverDelayed(boolean all) {
      for (java.util.Iterator<Delayed> it = delayed.iterator(); it.hasNext(); ) {
        Delayed x = it.next();
        if (all || x.atRound() <= round) {
          it.remove();
          note(x.device(), "a delayed copy of an earlier push arrives");
          PushResponse r = send(x.device(), x.mutations());
          if (!all && rnd.nextBoolean()) {
            deliver(x.device(), r);
          }
        }
      }
    }

    /** One push through the real service, its answer checked by the oracle whoever receives it. */
    PushResponse send(Device d, List<Mutation> ms) {
      PushRequest request = TestDevices.signed(d.caller, ms);
      // What the HTTP layer checks first: the simulated client must speak the contract.
      PushService.parse(Json.mapper().valueToTree(request));
      PushResponse response = push.push(d.caller, request);
      // Held mutations this push released were decided now; their decisions are in the outcomes
      // feed (and only replayed in this response), so the oracle reads them first.
      oracleOutcomes(d);
      if (response.results().size() != ms.size()) {
        fail("a push of " + ms.size() + " mutations got " + response.results().size() + " results");
      }
      StringBuilder sb = new StringBuilder("push");
      for (int i = 0; i < ms.size(); i++) {
        Mutation m = ms.get(i);
        MutationResult r = response.results().get(i);
        if (!m.mutationId().equals(r.mutationId()) || !m.recordId().equals(r.recordId())) {
          fail("result " + i + " of a push names mutation " + r.mutationId() + "/record " + r.recordId() + ", expected "
              + m.mutationId() + "/" + m.recordId());
        }
        checkAnswer(sent.get(m.mutationId()), r);
        sb.append(' ').append(m.op().name().toLowerCase(Locale.ROOT)).append(' ').append(s(m.recordId())).append('@')
            .append(m.baseVersion()).append("->").append(r.status().wire())
            .append(r.version() != null ? " v" + r.version() : "")
            .append(r.error() != null ? " " + r.error().code() : "")
            .append(Boolean.TRUE.equals(r.replayed()) ? " (replayed)" : "");
      }
      note(d, sb.toString());
      return response;
    }

    /**
     * Exactly one decision per mutation, answered once without {@code replayed} (or released from
     * the hold queue into the outcomes feed); every other answer is a replay of the decision, of
     * the final outcome once a person resolved it, or of the hold while it waits.
     */
    void checkAnswer(Sent s, MutationResult r) {
      if (r.status() == MutationStatus.HELD) {
        if (s.decision != null) {
          fail("mutation " + s.m.mutationId() + " is answered held after it was decided: " + canon(s.decision) + ", now " + canon(r));
        }
        if (r.replayed() == null) {
          if (s.held) {
            fail("mutation " + s.m.mutationId() + " was held twice without replayed: " + canon(r));
          }
          s.held = true;
        } else if (!r.replayed() || !s.held) {
          fail("a replayed hold of mutation " + s.m.mutationId() + " that was never held: " + canon(r));
        }
        if (r.waitingFor() == null || r.waitingFor() < 1 || r.waitingFor() >= s.m.deviceSeq()) {
          fail("mutation " + s.m.mutationId() + " (deviceSeq " + s.m.deviceSeq() + ") is held waiting for " + r.waitingFor());
        }
        return;
      }
      if (r.replayed() == null) {
        if (s.decision != null) {
          fail("mutation " + s.m.mutationId() + " was decided twice: first " + canon(s.decision) + ", again " + canon(r));
        }
        s.decision = r;
        checkDecision(s, r);
        return;
      }
      if (!r.replayed()) {
        fail("replayed must be true or absent, got false for " + s.m.mutationId());
      }
      if (s.decision == null) {
        fail("a replayed answer for mutation " + s.m.mutationId() + " before it was decided: " + canon(r));
      }
      MutationResult expected = s.finalOutcome != null ? s.finalOutcome : s.decision;
      if (!canon(r.asReplay()).equals(canon(expected.asReplay()))) {
        fail("a replay of mutation " + s.m.mutationId() + " answered " + canon(r) + " but its "
            + (s.finalOutcome != null ? "final outcome" : "decision") + " is " + canon(expected));
      }
    }

    void checkDecision(Sent s, MutationResult r) {
      Mutation m = s.m;
      String who = "the decision on " + m.op().name().toLowerCase(Locale.ROOT) + " " + m.mutationId();
      switch (r.status()) {
        case APPLIED -> {
          if (r.version() == null || r.version() < 1 || (m.op() == MutationOp.CREATE && r.version() != 1)) {
            fail(who + " is applied without a sensible version: " + canon(r));
          }
          claim(m.recordId(), r.version());
        }
        case MERGED -> {
          if (r.record() == null || r.version() == null || r.record().version() != r.version()
              || !r.record().recordId().equals(m.recordId())) {
            fail(who + " is merged without its record at its version: " + canon(r));
          }
          observe(r.record(), who);
          claim(m.recordId(), r.version());
        }
        case CONFLICT -> {
          if (r.serverRecord() == null || r.error() == null || !ErrorCode.VERSION_CONFLICT.name().equals(r.error().code())
              || !MutationRules.conflictId(m).equals(r.conflictId())) {
            fail(who + " is a conflict without serverRecord, VERSION_CONFLICT or its derived conflictId: " + canon(r));
          }
          observe(r.serverRecord(), who);
        }
        case REJECTED -> {
          if (r.error() == null) {
            fail(who + " is rejected without an error: " + canon(r));
          }
          if (r.serverRecord() != null) {
            observe(r.serverRecord(), who);
          }
        }
        default -> fail(who + " has a status this simulation does not know: " + canon(r));
      }
    }

    /** The device takes the answers to mutations it is still waiting for. */
    void deliver(Device d, PushResponse response) {
      for (MutationResult r : response.results()) {
        Entry e = d.outbox.get(r.recordId());
        if (e != null && e.sent && e.m.mutationId().equals(r.mutationId()) && r.status() != MutationStatus.HELD) {
          applyResult(d, e, r); // held: still waiting for its result, the mutation stays in flight
        }
      }
    }

    void applyResult(Device d, Entry e, MutationResult r) {
      UUID id = e.m.recordId();
      d.outbox.remove(id);
      switch (r.status()) {
        case APPLIED -> {
          if (e.m.op() == MutationOp.DELETE) {
            learn(d, id, new Known(r.version(), true, null));
          } else {
            Local l = d.local.get(id);
            if (l == null) {
              fail("device " + d.index + " lost its local copy of " + id + " while its change was in flight (simulation bug)");
            }
            observe(id, r.version(), false, l.data(), "device " + d.index + "'s copy after its applied " + e.m.mutationId());
            learn(d, id, new Known(r.version(), false, l.data().deepCopy()));
          }
        }
        case MERGED -> learn(d, id, Known.of(r.record()));
        default -> {
          // conflict or rejected: the change is dropped as final; the server's state stands.
          if (r.serverRecord() != null) {
            learn(d, id, Known.of(r.serverRecord()));
          }
        }
      }
      settleLocal(d, id);
    }

    void learn(Device d, UUID id, Known k) {
      Known cur = d.known.get(id);
      if (cur == null || k.version() > cur.version()) {
        d.known.put(id, k);
      }
    }

    /** Without an outbox entry, the local copy is the latest server state the device knows. */
    void settleLocal(Device d, UUID id) {
      if (d.outbox.containsKey(id)) {
        return;
      }
      Known k = d.known.get(id);
      if (k == null || k.deleted()) {
        d.local.remove(id);
      } else {
        d.local.put(id, new Local(k.version(), k.data().deepCopy()));
      }
    }

    // ---------------------------------------------------------------- pull and outcomes

    void pullAll(Device d, int limit, boolean mayStop) {
      int changes = 0;
      while (true) {
        PullResponse page = pull.pull(d.caller, d.cursor, Optional.of(Integer.toString(limit)), Optional.empty());
        for (Change c : page.changes()) {
          boolean deleted = c.op() == ChangeOp.DELETE;
          observe(c.recordId(), c.version(), deleted, c.data(), "pull by device " + d.index);
          learn(d, c.recordId(), new Known(c.version(), deleted, deleted ? null : c.data().deepCopy()));
          settleLocal(d, c.recordId());
        }
        changes += page.changes().size();
        d.cursor = Optional.of(page.cursor());
        if (!page.hasMore() || (mayStop && rnd.nextInt(100) < 25)) {
          break;
        }
      }
      note(d, "pulled " + changes + " changes");
    }

    void readOutcomes(Device d) {
      while (true) {
        OutcomesResponse page = pull.outcomes(d.caller, d.outcomesCursor, Optional.of("50"));
        for (MutationResult r : page.outcomes()) {
          Sent s = sent.get(r.mutationId());
          if (s == null || s.device != d) {
            fail("device " + d.index + " was told the outcome of a mutation it did not send: " + canon(r));
          }
          if (!canon(r).equals(canon(s.decision)) && !canon(r).equals(canon(s.finalOutcome))) {
            fail("device " + d.index + " read the outcome " + canon(r) + " but the oracle knows the decision "
                + canon(s.decision) + " and the final outcome " + canon(s.finalOutcome));
          }
          Entry e = d.outbox.get(r.recordId());
          if (e != null && e.sent && e.m.mutationId().equals(r.mutationId())) {
            applyResult(d, e, r);
          } else {
            // Already known (from a replay, or an outcome read before): only the state is news.
            if (r.record() != null) {
              learn(d, r.recordId(), Known.of(r.record()));
            } else if (r.serverRecord() != null) {
              learn(d, r.recordId(), Known.of(r.serverRecord()));
            }
            settleLocal(d, r.recordId());
          }
          note(d, "outcome of " + s(r.mutationId()) + ": " + r.status().wire() + " " + r.resolution());
        }
        d.outcomesCursor = Optional.of(page.cursor());
        if (!page.hasMore()) {
          break;
        }
      }
    }

    /**
     * The oracle learns what the outcomes feed says of a device's mutations as soon as it exists:
     * the decision on a held mutation that was released, or the final outcome of a parked or
     * rejected one that a person resolved.
     */
    void oracleOutcomes(Device d) {
      while (true) {
        OutcomesResponse page = pull.outcomes(d.caller, d.oracleOutcomesCursor, Optional.of("50"));
        for (MutationResult r : page.outcomes()) {
          Sent s = sent.get(r.mutationId());
          if (s == null || s.device != d) {
            fail("an outcome for device " + d.index + " names a mutation it did not send: " + canon(r));
          }
          if (r.replayed() != null || r.status() == MutationStatus.HELD) {
            fail("an outcome is held or replayed: " + canon(r));
          }
          if (s.decision == null) {
            if (!s.held) {
              fail("the outcomes feed decides mutation " + s.m.mutationId() + ", which was never held: " + canon(r));
            }
            s.decision = r;
            checkDecision(s, r);
            continue;
          }
          if (s.decision.status() != MutationStatus.CONFLICT && s.decision.status() != MutationStatus.REJECTED) {
            fail("an outcome for mutation " + s.m.mutationId() + " whose decision was neither parked nor rejected: decision "
                + canon(s.decision) + ", outcome " + canon(r));
          }
          if (s.finalOutcome != null) {
            fail("mutation " + s.m.mutationId() + " got a second final outcome: " + canon(s.finalOutcome) + ", then " + canon(r));
          }
          boolean merged = r.status() == MutationStatus.MERGED && r.record() != null;
          boolean dismissed = r.status() == MutationStatus.REJECTED && r.resolution() != null && r.record() == null;
          if (!merged && !dismissed) {
            fail("the final outcome of mutation " + s.m.mutationId() + " is neither merged with a record nor a dismissed rejection: "
                + canon(r));
          }
          if (merged) {
            observe(r.record(), "final outcome of " + s.m.mutationId());
            claim(r.recordId(), r.version());
          }
          s.finalOutcome = r;
        }
        d.oracleOutcomesCursor = Optional.of(page.cursor());
        if (!page.hasMore()) {
          break;
        }
      }
    }

    // ---------------------------------------------------------------- the supervisor

    void supervise() {
      Device sup = devices.get(rnd.nextInt(devices.size()));
      List<InboxItemView> open = new ArrayList<>(
          inbox.list(sup.caller, Optional.of("open"), Optional.empty(), Optional.of(COLLECTION), Optional.of("1000")).items());
      // The list is newest first by server time; sorted by id it is the same in every run.
      open.sort(Comparator.comparing(i -> i.id().toString()));
      int n = Math.min(open.size(), 1 + rnd.nextInt(3));
      for (int k = 0; k < n; k++) {
        InboxItemView item = open.remove(rnd.nextInt(open.size()));
        Sent s = sent.get(item.mutationId());
        if (!"open".equals(item.status()) || s == null || s.decision == null
            || !(("conflict".equals(item.kind()) && s.decision.status() == MutationStatus.CONFLICT && item.id().equals(s.decision.conflictId()))
                || ("rejected".equals(item.kind()) && s.decision.status() == MutationStatus.REJECTED)
                || "forced".equals(item.kind()))) {
          fail("inbox item " + item.id() + " (" + item.kind() + ", " + item.status() + ") does not match the first result of mutation "
              + item.mutationId() + ": " + (s == null || s.decision == null ? "none" : canon(s.decision)));
        }
        int dice = rnd.nextInt(100);
        ResolveRequest request = dice < 40 ? new ResolveRequest("keepServer", null, "kept by simulation")
            : dice < 80 ? new ResolveRequest("takeClient", null, null)
            : new ResolveRequest("edit", editData(item.recordId()), "edited by simulation");
        String key = "sim-" + seed + "-" + item.id();
        try {
          ResolveResponse response = inbox.resolve(sup.caller, item.id(), request, Optional.of(key));
          resolved++;
          note(sup, "resolved " + s(item.id()) + " (" + item.kind() + " of " + s(item.mutationId()) + ") by " + request.resolution()
              + (response.record() == null ? "" : " -> v" + response.record().version()));
          if (!"resolved".equals(response.item().status())) {
            fail("resolving inbox item " + item.id() + " answered an item that is " + response.item().status());
          }
          if (response.record() != null) {
            observe(response.record(), "resolution of inbox item " + item.id());
          }
          JsonNode written = response.item().resolution() == null ? null : response.item().resolution().get("version");
          if (written != null) {
            if (response.record() == null || response.record().version() != written.asLong()) {
              fail("the resolution of inbox item " + item.id() + " wrote version " + written + " but answers record "
                  + canon(response.record()));
            }
            claim(item.recordId(), written.asLong());
          }
          if (rnd.nextInt(100) < 20) {
            ResolveResponse again = inbox.resolve(sup.caller, item.id(), request, Optional.of(key));
            if (!canon(again).equals(canon(response))) {
              fail("resolving inbox item " + item.id() + " again with the same Idempotency-Key answered " + canon(again)
                  + " instead of " + canon(response));
            }
          }
          Device owner = byId.get(item.deviceId());
          if (owner != null) {
            oracleOutcomes(owner);
          }
        } catch (ApiException e) {
          if (e.code() != ErrorCode.RESOLUTION_REJECTED) {
            throw e;
          }
          note(sup, "resolution " + request.resolution() + " of " + s(item.id()) + " refused: " + e.getMessage());
        }
      }
    }

    /** A supervisor's edit: the current record with a corrected phone and a note, or a fresh booking. */
    ObjectNode editData(UUID recordId) {
      RecordKey key = new RecordKey(COLLECTION, recordId);
      StoredRecord current = store.write(tenant, tx -> tx.findRecords(List.of(key)).get(key));
      if (current != null && !current.deleted()) {
        ObjectNode data = current.data().deepCopy();
        data.put("patientPhone", phone());
        ArrayNode list = data.has("notes") ? (ArrayNode) data.get("notes") : data.putArray("notes");
        list.add(noteText("supervisor's note"));
        return data;
      }
      ObjectNode data = Json.mapper().createObjectNode();
      data.put("patientName", name());
      data.put("clinicId", CLINICS.get(rnd.nextInt(CLINICS.size())));
      data.put("slotStart", uniqueSlot());
      data.put("status", "booked");
      data.putArray("notes").add(noteText("rebooked by the supervisor"));
      return data;
    }

    // ---------------------------------------------------------------- the oracle

    /** The server must never show two different states under one version of a record. */
    void observe(ServerRecord r, String source) {
      observe(r.recordId(), r.version(), r.deleted(), r.data(), source);
    }

    void observe(UUID id, long version, boolean deleted, ObjectNode data, String source) {
      String state = deleted ? "(deleted)" : Jcs.canonicalString(data);
      String[] before = states.computeIfAbsent(id, k -> new HashMap<>()).putIfAbsent(version, new String[] {state, source});
      if (before != null && !before[0].equals(state)) {
        fail("record " + id + " version " + version + " was shown as " + before[0] + " (" + before[1] + ") and as " + state
            + " (" + source + ")");
      }
    }

    void claim(UUID id, long version) {
      claimed.computeIfAbsent(id, k -> new TreeSet<>()).add(version);
    }

    void verify() {
      Map<UUID, PulledRecord> server = new LinkedHashMap<>();
      long after = 0;
      while (true) {
        PullPage page = store.pull(tenant, org.civicsync.server.store.PullQuery.all(after, 5000, Set.of()));
        for (PulledRecord r : page.records()) {
          server.put(r.recordId(), r);
          after = r.seq();
        }
        if (!page.hasMore()) {
          break;
        }
      }
      // (1) every device holds what the server holds
      for (Device d : devices) {
        if (!d.outbox.isEmpty()) {
          fail("device " + d.index + " still has " + d.outbox.size() + " mutations in its outbox after the final sync");
        }
        for (PulledRecord r : server.values()) {
          Local l = d.local.get(r.recordId());
          if (r.deleted()) {
            if (l != null) {
              fail("device " + d.index + " still has record " + r.recordId() + " (v" + l.version() + "), deleted on the server at v"
                  + r.version());
            }
          } else if (l == null) {
            fail("device " + d.index + " lacks record " + r.recordId() + ", live on the server at v" + r.version());
          } else if (l.version() != r.version() || !Jcs.canonicalString(l.data()).equals(Jcs.canonicalString(r.data()))) {
            fail("device " + d.index + " has record " + r.recordId() + " at v" + l.version() + " " + Jcs.canonicalString(l.data())
                + " but the server has v" + r.version() + " " + Jcs.canonicalString(r.data()));
          }
        }
        for (UUID id : d.local.keySet()) {
          if (!server.containsKey(id)) {
            fail("device " + d.index + " has record " + id + " that the server never had");
          }
        }
      }
      // (2) one first result per mutation, the one the log keeps; one inbox item per parked or rejected one
      List<LoggedMutation> log = store.write(tenant, tx -> {
        List<LoggedMutation> all = new ArrayList<>();
        tx.forEachLogged(all::add);
        return all;
      });
      Map<UUID, LoggedMutation> logged = new HashMap<>();
      for (LoggedMutation e : log) {
        if (logged.put(e.mutation().mutationId(), e) != null) {
          fail("mutation " + e.mutation().mutationId() + " appears more than once in the event log");
        }
      }
      Map<UUID, List<InboxItem>> items = new HashMap<>();
      for (InboxItem i : store.inbox(tenant, Optional.empty(), Optional.empty(), Optional.empty(), 1_000_000)) {
        if (i.mutationId() != null && !"forced".equals(i.kind())) {
          items.computeIfAbsent(i.mutationId(), k -> new ArrayList<>()).add(i);
        }
      }
      for (Sent s : sent.values()) {
        UUID id = s.m.mutationId();
        if (s.decision == null) {
          fail("mutation " + id + " was sent but never got a first result");
        }
        LoggedMutation e = logged.get(id);
        if (e == null) {
          fail("mutation " + id + " got the result " + canon(s.decision) + " but is not in the event log");
        }
        if (!canon(e.result()).equals(canon(s.decision)) || !canon(e.mutation().withSignature(null)).equals(s.canon)) {
          fail("the event log keeps mutation " + id + " as " + canon(e.mutation().withSignature(null)) + " -> " + canon(e.result())
              + " but it was sent as " + s.canon + " and first answered " + canon(s.decision));
        }
        List<InboxItem> its = items.getOrDefault(id, List.of());
        boolean parkedOrRejected = s.decision.status() == MutationStatus.CONFLICT || s.decision.status() == MutationStatus.REJECTED;
        if (its.size() != (parkedOrRejected ? 1 : 0)) {
          fail("mutation " + id + " (" + s.decision.status().wire() + ") has " + its.size() + " inbox items");
        }
        if (s.decision.status() == MutationStatus.CONFLICT && !its.get(0).id().equals(s.decision.conflictId())) {
          fail("the inbox item of parked mutation " + id + " is " + its.get(0).id() + ", not its conflictId " + s.decision.conflictId());
        }
        if (s.decision.status() == MutationStatus.APPLIED && e.after() == null) {
          fail("mutation " + id + " was answered applied v" + s.decision.version() + " but the log says it wrote nothing");
        }
        if ((s.decision.status() == MutationStatus.APPLIED || s.decision.status() == MutationStatus.MERGED) && e.after() != null
            && e.after().version() != s.decision.version()) {
          fail("mutation " + id + " was answered " + s.decision.status().wire() + " v" + s.decision.version() + " but the log wrote v"
              + e.after().version());
        }
        if (!parkedOrRejected && e.after() == null && s.decision.status() == MutationStatus.MERGED) {
          continue; // a merged change that wrote nothing (the record already was as it asked): names the version standing
        }
        if (parkedOrRejected && e.after() != null) {
          fail("mutation " + id + " was answered " + s.decision.status().wire() + " but the log says it wrote v" + e.after().version());
        }
      }
      // (3) per record: versions 1..v written once each, all of them named by a result or a resolution
      Map<UUID, List<LoggedMutation>> writes = new LinkedHashMap<>();
      for (LoggedMutation e : log) {
        if (e.after() != null) {
          writes.computeIfAbsent(e.mutation().recordId(), k -> new ArrayList<>()).add(e);
        }
      }
      for (UUID id : writes.keySet()) {
        if (!server.containsKey(id)) {
          fail("the log wrote record " + id + " but the server has no such record");
        }
      }
      for (Map.Entry<UUID, TreeSet<Long>> c : claimed.entrySet()) {
        if (!server.containsKey(c.getKey())) {
          fail("results name versions " + c.getValue() + " of record " + c.getKey() + ", which the server does not have");
        }
      }
      for (PulledRecord r : server.values()) {
        List<LoggedMutation> w = writes.getOrDefault(r.recordId(), List.of());
        for (int i = 0; i < w.size(); i++) {
          if (w.get(i).after().version() != i + 1) {
            fail("record " + r.recordId() + ": write " + (i + 1) + " in the log is at version " + w.get(i).after().version() + " ("
                + who(w.get(i)) + "); versions written: " + w.stream().map(x -> x.after().version()).toList());
          }
        }
        if (w.size() != r.version()) {
          fail("record " + r.recordId() + " is at version " + r.version() + " but the log wrote it " + w.size() + " times");
        }
        LoggedMutation last = w.get(w.size() - 1);
        if (last.after().deleted() != r.deleted()
            || (!r.deleted() && !Jcs.canonicalString(last.after().data()).equals(Jcs.canonicalString(r.data())))) {
          fail("record " + r.recordId() + " differs from the last state its log wrote");
        }
        TreeSet<Long> expected = new TreeSet<>();
        for (long v = 1; v <= r.version(); v++) {
          expected.add(v);
        }
        TreeSet<Long> named = claimed.getOrDefault(r.recordId(), new TreeSet<>());
        if (!named.equals(expected)) {
          fail("record " + r.recordId() + " is at version " + r.version() + " but applied/merged results and resolutions name versions "
              + named + "; the log's writers: " + w.stream().map(x -> "v" + x.after().version() + " " + who(x)).toList());
        }
        checkFieldKinds(r.recordId(), w);
      }
    }

    /**
     * Across the record's versions: notes only grow, status moves only forward along its
     * transitions, by one step or several (a device may check a patient in and complete the visit
     * in one change; a stale one is merged onto a server state behind it, say one a person set
     * back, the same way: {@code FieldRule.Monotonic.allows}).
     */
    void checkFieldKinds(UUID id, List<LoggedMutation> writes) {
      ObjectNode prev = null;
      for (LoggedMutation e : writes) {
        ObjectNode cur = e.after().deleted() ? null : e.after().data();
        // A person's resolution is obeyed as it is, field kinds or not (conflicts.md section 12).
        boolean byDevice = sent.containsKey(e.mutation().mutationId());
        if (byDevice && prev != null && cur != null) {
          Set<String> before = items(prev.get("notes"));
          Set<String> now = items(cur.get("notes"));
          if (!now.containsAll(before)) {
            Set<String> lost = new LinkedHashSet<>(before);
            lost.removeAll(now);
            fail("record " + id + " v" + e.after().version() + " (" + who(e) + ") lost notes " + lost
                + ": notes is append-only");
          }
          String from = prev.path("status").asText(null);
          String to = cur.path("status").asText(null);
          if (from != null && !from.equals(to) && !statusRule.allows(from, to)) {
            fail("record " + id + " v" + e.after().version() + " (" + who(e) + ") moved status from " + from + " to " + to
                + ", which its transitions do not allow");
          }
        }
        prev = cur;
      }
    }

    String who(LoggedMutation e) {
      Sent s = sent.get(e.mutation().mutationId());
      if (s != null) {
        return e.mutation().op().name().toLowerCase(Locale.ROOT) + " " + s(e.mutation().mutationId()) + " of device " + s.device.index
            + " at base " + e.mutation().baseVersion() + ", " + e.result().status().wire();
      }
      return "server change " + s(e.mutation().mutationId()) + " (a resolution)";
    }

    Report report() {
      int applied = 0;
      int merged = 0;
      int rejected = 0;
      int conflicts = 0;
      for (Sent s : sent.values()) {
        switch (s.decision.status()) {
          case APPLIED -> applied++;
          case MERGED -> merged++;
          case REJECTED -> rejected++;
          case CONFLICT -> conflicts++;
          default -> { }
        }
      }
      return new Report(sent.size(), applied, merged, rejected, conflicts, resolved, pushesLost, duplicates);
    }

    // ---------------------------------------------------------------- helpers

    /**
     * The device's next clock reading. The simulated wall clock moves on by 1 to 200 ms per edit
     * (by 1 ms once it reaches {@link #MAX_OFFSET_MS}, which takes some 24,000 edits), so no two
     * edits of any devices share a millisecond and their order never depends on device ids.
     */
    String tick(Device d) {
      offset = offset >= MAX_OFFSET_MS ? offset + 1 : Math.min(MAX_OFFSET_MS, offset + 1 + rnd.nextInt(200));
      d.clock = Hlc.tick(d.clock, wallBase + offset, d.clockId);
      return d.clock.toString();
    }

    String clientTime() {
      return Instant.ofEpochMilli(wallBase + offset).toString();
    }

    UUID uuid() {
      return new UUID(rnd.nextLong(), rnd.nextLong() & 0x0fffffffffffffffL | 0x4000000000000000L);
    }

    String uniqueSlot() {
      return UNIQUE_SLOTS.plus(15L * ++uniqueSlots, ChronoUnit.MINUTES).toString();
    }

    String name() {
      return GIVEN[rnd.nextInt(GIVEN.length)] + " " + FAMILY[rnd.nextInt(FAMILY.length)];
    }

    String phone() {
      return "+9477" + (1_000_000 + rnd.nextInt(8_999_999));
    }

    String noteText(String what) {
      return what + " #" + ++notes;
    }

    String when() {
      return round == FINAL_SYNC ? "final sync" : "round " + round;
    }

    void note(Device d, String event) {
      trace.addLast(when() + ", device " + d.index + ": " + event);
      if (trace.size() > TRACE) {
        trace.removeFirst();
      }
    }

    String trace() {
      return trace.isEmpty() ? "" : "\nlast events:\n  " + String.join("\n  ", trace);
    }

    void fail(String message) {
      throw new AssertionError("seed " + seed + ": " + message + " (" + when() + ")" + trace());
    }
  }

  // ------------------------------------------------------------------ JSON

  private static String canon(Object value) {
    return value == null ? "null" : Jcs.canonicalString(Json.mapper().valueToTree(value));
  }

  private static Set<String> items(JsonNode array) {
    Set<String> out = new LinkedHashSet<>();
    if (array != null && array.isArray()) {
      array.forEach(x -> out.add(Jcs.canonicalString(x)));
    }
    return out;
  }

  private static String s(UUID id) {
    return id.toString().substring(0, 8);
  }
}
