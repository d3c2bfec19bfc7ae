package org.civicsync.client;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.civicsync.client.outbox.EntryState;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.client.store.LocalRecord;
import org.civicsync.client.store.LocalStore;
import org.civicsync.client.store.LocalTx;
import org.civicsync.client.store.RecordQuery;
import org.civicsync.client.sync.Backoff;
import org.civicsync.client.sync.SyncEngine;
import org.civicsync.client.transport.ApiError;
import org.civicsync.client.transport.ServerApi;
import org.civicsync.client.transport.Transport;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.CollectionDefinition;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.contracts.Token;
import org.civicsync.contracts.TokenRequest;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.ids.Uuid7;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;
import org.civicsync.core.signing.Ed25519;
import org.civicsync.core.signing.Envelopes;
import org.civicsync.core.validation.Violation;

/**
 * A device's CivicSync client. Writes commit locally at once — the record and its signed outbox
 * entry in one transaction — and {@link #sync()} (or background sync, {@link #start}) carries them
 * to the server exactly once: retries reuse the mutation ids, so the server's idempotency turns any
 * number of deliveries into one outcome. Thread-safe; one sync runs at a time.
 */
public final class CivicSyncClient implements AutoCloseable {
  static final String DEVICE_ID = "device.id";
  static final String TENANT = "device.tenant";
  static final String USER = "device.user";
  static final String TOKEN = "device.token";
  static final String TOKEN_EXPIRES = "device.tokenExpiresAt";
  static final String KEY_SEED = "device.keySeed";
  static final String DEVICE_SEQ = "device.seq";
  static final String HLC = "device.hlc";
  static final String PULL_CURSOR = "pull.cursor";
  static final String OUTCOMES_CURSOR = "outcomes.cursor";
  static final String SCHEMAS = "collections";
  /** The server's entity tag of the stored definitions, sent as If-None-Match. */
  static final String SCHEMAS_TAG = "collections.etag";
  static final String LAST_SYNC = "sync.lastAt";

  /** States whose change is still on its way and shows in the local view. */
  private static final Set<EntryState> IN_FLIGHT = EnumSet.of(EntryState.PENDING, EntryState.SENDING, EntryState.HELD);

  private final LocalStore store;
  private final ServerApi api;
  private final Clock clock;
  private final int batchSize;
  private final int pullPageSize;
  private final Object syncLock = new Object();
  private final List<Listeners.RecordListener> recordListeners = new CopyOnWriteArrayList<>();
  private final List<Listeners.SyncListener> syncListeners = new CopyOnWriteArrayList<>();
  private final SyncEngine engine;
  private final ScheduledExecutorService scheduler;
  /** Runs the push on its way while the sync's thread takes the next batch or settles the last answer. */
  private final ExecutorService pusher;
  private volatile boolean online = true;
  private volatile boolean started;
  private volatile boolean networkUp = true;
  private volatile boolean closing;
  private final LiveUpdates liveUpdates;
  private volatile CollectionCatalog catalog;
  private ScheduledFuture<?> timer;

  private CivicSyncClient(Builder b) {
    this.store = b.store;
    this.api = new ServerApi(b.transport);
    this.clock = b.clock;
    this.batchSize = b.batchSize;
    this.pullPageSize = b.pullPageSize;
    this.engine = new SyncEngine(b.period, new Backoff(b.backoffBase, b.backoffCap, b.random));
    java.util.concurrent.ScheduledThreadPoolExecutor ex = new java.util.concurrent.ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, "civicsync-sync");
      t.setDaemon(true);
      return t;
    });
    // A pending timer must not hold close() up.
    ex.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
    this.scheduler = ex;
    this.pusher = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "civicsync-push");
      t.setDaemon(true);
      return t;
    });
    this.catalog = loadCatalog();
    this.liveUpdates = new LiveUpdates((lastEventId, sink) -> withToken(token -> {
      api.stream(token, lastEventId, sink);
      return null;
    }), () -> poke(new SyncEngine.RemoteChange()),
        () -> started && networkUp && store.transaction(tx -> tx.setting(TOKEN)).isPresent(),
        new Backoff(b.backoffBase, b.backoffCap, b.random));
  }

  public static Builder builder() {
    return new Builder();
  }

  /** How to build a client: a store and a transport are required. */
  public static final class Builder {
    private LocalStore store;
    private Transport transport;
    private Clock clock = Clock.systemUTC();
    private Random random = new Random();
    private int batchSize = 500;
    private int pullPageSize = 1000;
    private Duration period = Duration.ofMinutes(5);
    private Duration backoffBase = Duration.ofSeconds(2);
    private Duration backoffCap = Duration.ofMinutes(10);

    public Builder store(LocalStore s) {
      this.store = s;
      return this;
    }

    /** The transport to the server, e.g. {@code new UrlConnectionTransport(URI.create("https://…"))}. */
    public Builder transport(Transport t) {
      this.transport = t;
      return this;
    }

    public Builder clock(Clock c) {
      this.clock = c;
      return this;
    }

    /** The randomness of backoff jitter (seed it in tests). */
    public Builder random(Random r) {
      this.random = r;
      return this;
    }

    /** Mutations per push (1 to 5000; default 500). */
    public Builder batchSize(int n) {
      if (n < 1 || n > 5000) {
        throw new IllegalArgumentException("batchSize must be 1 to 5000");
      }
      this.batchSize = n;
      return this;
    }

    public Builder pullPageSize(int n) {
      this.pullPageSize = n;
      return this;
    }

    /** Background sync: the wait between cycles, and the backoff after failures. */
    public Builder schedule(Duration period, Duration backoffBase, Duration backoffCap) {
      this.period = period;
      this.backoffBase = backoffBase;
      this.backoffCap = backoffCap;
      return this;
    }

    public CivicSyncClient build() {
      if (store == null || transport == null) {
        throw new IllegalStateException("a client needs a store and a transport");
      }
      return new CivicSyncClient(this);
    }
  }

  // ---------------------------------------------------------------- enrollment

  /**
   * Enrolls this device with a code from the administrator: makes its Ed25519 key pair, registers
   * the public key, and keeps the credentials in the local store. Needs the network.
   */
  public EnrollResponse enroll(String code, String deviceName) throws IOException, ApiError {
    if (enrolled()) {
      // Its outbox, numbering and cursors belong to the device already enrolled here.
      throw new ClientException("ALREADY_ENROLLED", "this store belongs to an enrolled device; use a new store to enroll another");
    }
    Ed25519.KeyPair keys = Ed25519.generate();
    EnrollResponse e = api.enroll(new EnrollRequest(code, deviceName, keys.publicKey().encoded()));
    store.transaction(tx -> {
      tx.putSetting(DEVICE_ID, e.deviceId().toString());
      tx.putSetting(TENANT, e.tenantId());
      tx.putSetting(USER, e.userId());
      tx.putSetting(TOKEN, e.token());
      tx.putSetting(TOKEN_EXPIRES, e.expiresAt().toString());
      tx.putSetting(KEY_SEED, keys.privateKey().encoded());
      return null;
    });
    return e;
  }

  public boolean enrolled() {
    return store.transaction(tx -> tx.setting(DEVICE_ID).isPresent());
  }

  // ---------------------------------------------------------------- collections

  /** A handle on one collection for local reads and writes. */
  public LocalCollection collection(String name) {
    return new LocalCollection(this, name);
  }

  Optional<CollectionSchema> schema(String collection) {
    return catalog.find(collection);
  }

  private CollectionCatalog loadCatalog() {
    Optional<String> cached = store.transaction(tx -> tx.setting(SCHEMAS));
    if (cached.isPresent()) {
      try {
        List<CollectionDefinition> defs = List.of(Json.mapper().readValue(cached.get(), CollectionDefinition[].class));
        return CollectionCatalog.of(defs);
      } catch (IOException | RuntimeException e) {
        // A cache from another version: fall back to the built-ins until the next sync refreshes
        // it, which must then fetch the definitions outright rather than hear they are current.
        store.transaction(tx -> {
          tx.putSetting(SCHEMAS_TAG, "");
          return null;
        });
      }
    }
    return CollectionCatalog.of(CollectionCatalog.builtInDefinitions());
  }

  private CollectionSchema requireSchema(String collection) {
    return schema(collection).orElseThrow(() -> new ClientException("UNKNOWN_COLLECTION", "no collection '" + collection + "'"));
  }

  private void check(CollectionSchema schema, ObjectNode data) {
    Optional<Violation> v = schema.check(data);
    if (v.isPresent()) {
      throw new ClientException("VALIDATION_FAILED", v.get().message(), Optional.of("/data" + v.get().pointer()));
    }
  }

  // ---------------------------------------------------------------- local writes

  UUID create(String collection, ObjectNode data) {
    CollectionSchema schema = requireSchema(collection);
    ObjectNode full = MutationRules.withDefaults(schema, data);
    check(schema, full);
    UUID id = newId();
    Instant now = clock.instant();
    store.transaction(tx -> {
      Mutation m = newMutation(tx, collection, id, MutationOp.CREATE, 0, data.deepCopy());
      tx.putEntry(new OutboxEntry(m, EntryState.PENDING, Optional.empty(), 0, now, now));
      tx.putRecord(new LocalRecord(collection, id, 0, null, full, true, now));
      return null;
    });
    afterLocalWrite(collection, id, Optional.of(full));
    return id;
  }

  void update(String collection, UUID id, ObjectNode patch) {
    CollectionSchema schema = requireSchema(collection);
    Instant now = clock.instant();
    ObjectNode view = store.transaction(tx -> {
      LocalRecord rec = live(tx, collection, id);
      ObjectNode next = MutationRules.patched(rec.data(), patch);
      check(schema, next);
      List<OutboxEntry> unsettled = inFlight(tx, collection, id);
      OutboxEntry last = unsettled.isEmpty() ? null : unsettled.get(unsettled.size() - 1);
      if (last != null && foldable(last)) {
        Mutation m = last.mutation();
        ObjectNode merged = m.op() == MutationOp.CREATE ? MutationRules.patched(m.data(), patch) : mergePatch(m.data(), patch);
        tx.putEntry(refold(tx, last, m.op(), merged, now));
      } else if (unsettled.isEmpty() && rec.serverVersion() > 0) {
        Mutation m = newMutation(tx, collection, id, MutationOp.UPDATE, rec.serverVersion(), patch.deepCopy());
        tx.putEntry(new OutboxEntry(m, EntryState.PENDING, Optional.empty(), 0, now, now));
      }
      // Otherwise an earlier change of this record is on its way: the edit waits in the record
      // (dirty) and becomes an entry once that change is settled and its version known.
      tx.putRecord(new LocalRecord(collection, id, rec.serverVersion(), rec.serverData(), next, true, now));
      return next;
    });
    afterLocalWrite(collection, id, Optional.of(view));
  }

  void delete(String collection, UUID id) {
    requireSchema(collection);
    Instant now = clock.instant();
    store.transaction(tx -> {
      LocalRecord rec = live(tx, collection, id);
      List<OutboxEntry> unsettled = inFlight(tx, collection, id);
      OutboxEntry last = unsettled.isEmpty() ? null : unsettled.get(unsettled.size() - 1);
      if (last != null && foldable(last) && last.mutation().op() == MutationOp.UPDATE) {
        tx.putEntry(refold(tx, last, MutationOp.DELETE, null, now));
      } else if (unsettled.isEmpty() && rec.serverVersion() > 0) {
        Mutation m = newMutation(tx, collection, id, MutationOp.DELETE, rec.serverVersion(), null);
        tx.putEntry(new OutboxEntry(m, EntryState.PENDING, Optional.empty(), 0, now, now));
      }
      tx.putRecord(new LocalRecord(collection, id, rec.serverVersion(), rec.serverData(), null, true, now));
      return null;
    });
    afterLocalWrite(collection, id, Optional.empty());
  }

  Optional<ObjectNode> get(String collection, UUID id) {
    return store.transaction(tx -> tx.record(collection, id)).filter(r -> !r.deleted()).map(r -> r.data().deepCopy());
  }

  List<LocalRecord> query(RecordQuery q) {
    return store.transaction(tx -> tx.query(q));
  }

  void observe(Listeners.RecordListener l) {
    recordListeners.add(l);
  }

  /** Registers a listener for sync events and status. */
  public void addSyncListener(Listeners.SyncListener l) {
    syncListeners.add(l);
  }

  private LocalRecord live(LocalTx tx, String collection, UUID id) {
    return tx.record(collection, id).filter(r -> !r.deleted())
        .orElseThrow(() -> new ClientException("RECORD_NOT_FOUND", "no record " + id + " in " + collection));
  }

  private static boolean foldable(OutboxEntry e) {
    // Never sent: its content may still change under the same mutation id and deviceSeq.
    return e.state() == EntryState.PENDING && e.attempts() == 0;
  }

  private record RecordKey(String collection, UUID recordId) {}

  private List<OutboxEntry> inFlight(LocalTx tx, String collection, UUID id) {
    return tx.entriesOf(collection, id).stream().filter(e -> IN_FLIGHT.contains(e.state())).collect(Collectors.toList());
  }

  private static ObjectNode mergePatch(ObjectNode first, ObjectNode second) {
    ObjectNode out = first.deepCopy();
    second.fields().forEachRemaining(f -> out.set(f.getKey(), f.getValue().deepCopy()));
    return out;
  }

  private static final java.security.SecureRandom ID_BITS = new java.security.SecureRandom();

  /**
   * A new record or mutation id: time-ordered ({@link Uuid7}), so that the server's indexes on
   * them grow at their end. A device clock that is wrong only puts its ids out of order.
   */
  private UUID newId() {
    return Uuid7.next(clock.millis(), ID_BITS);
  }

  private OutboxEntry refold(LocalTx tx, OutboxEntry last, MutationOp op, ObjectNode data, Instant now) {
    Mutation m = last.mutation();
    Mutation folded = new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), m.recordId(), op, m.baseVersion(), data, nextHlc(tx),
        now.toString());
    return new OutboxEntry(sign(tx, folded), EntryState.PENDING, Optional.empty(), 0, last.createdAt(), now);
  }

  private Mutation newMutation(LocalTx tx, String collection, UUID id, MutationOp op, long base, ObjectNode data) {
    long seq = tx.setting(DEVICE_SEQ).map(Long::parseLong).orElse(0L) + 1;
    tx.putSetting(DEVICE_SEQ, Long.toString(seq));
    Mutation m = new Mutation(newId(), seq, collection, id, op, base, data, nextHlc(tx), clock.instant().toString());
    return sign(tx, m);
  }

  private String nextHlc(LocalTx tx) {
    String device = tx.setting(DEVICE_ID).orElseThrow(() -> new ClientException("NOT_ENROLLED", "enroll this device first"));
    Hlc last = tx.setting(HLC).map(Hlc::parse).orElse(null);
    Hlc next = Hlc.tick(last, clock.millis(), device);
    tx.putSetting(HLC, next.toString());
    return next.toString();
  }

  private Mutation sign(LocalTx tx, Mutation m) {
    String tenant = tx.setting(TENANT).orElseThrow(() -> new ClientException("NOT_ENROLLED", "enroll this device first"));
    UUID device = UUID.fromString(tx.setting(DEVICE_ID).get());
    return Envelopes.sign(m.withSignature(null), tenant, device, signer(tx.setting(KEY_SEED).get()));
  }

  // Every local change is signed: the key is decoded once per seed (a device enrolled again has another).
  private volatile Ed25519.PrivateKey signer;

  private Ed25519.PrivateKey signer(String seed) {
    Ed25519.PrivateKey k = signer;
    if (k == null || !k.encoded().equals(seed)) {
      k = Ed25519.privateKey(seed);
      signer = k;
    }
    return k;
  }

  private void afterLocalWrite(String collection, UUID id, Optional<ObjectNode> data) {
    recordListeners.forEach(l -> l.changed(collection, id, data));
    poke(new SyncEngine.LocalChange());
  }

  // ---------------------------------------------------------------- sync

  /** The outcome of {@link #sync()}. */
  public record SyncReport(int pushed, int pulled, int outcomes, ClientStatus status) {}

  /**
   * Pushes until nothing is pending, pulls until caught up, and fetches outcomes of held or parked
   * changes. Renews an expired token by key on the way.
   *
   * @throws IOException when the server cannot be reached (nothing is lost: the outbox stays)
   * @throws ApiError when the server refuses the device (e.g. revoked)
   */
  public SyncReport sync() throws IOException, ApiError {
    synchronized (syncLock) {
      int pushed = 0;
      int pulled = 0;
      int outcomes = 0;
      try {
        // Pushes first: they need no fresh definitions (the server checks each mutation against its
        // own), and on a lossy link a sync cut short by a reset retries without paying a round trip
        // for definitions before every push.
        pushed = pushAll();
        refreshSchemas();
        while (true) {
          int[] page = withToken(this::pullOnce);
          pulled += page[0];
          progress(pushed, pulled);
          if (page[1] == 0) {
            break;
          }
        }
        while (true) {
          int[] page = withToken(this::outcomesOnce);
          outcomes += page[0];
          if (page[1] == 0) {
            break;
          }
        }
        online = true;
      } catch (IOException e) {
        online = false;
        publishStatus();
        throw e;
      }
      Instant at = clock.instant();
      store.transaction(tx -> {
        tx.putSetting(LAST_SYNC, at.toString());
        return null;
      });
      ClientStatus s = status();
      syncListeners.forEach(l -> l.status(s));
      return new SyncReport(pushed, pulled, outcomes, s);
    }
  }

  private void progress(int pushed, int pulled) {
    if (syncListeners.isEmpty()) {
      return;
    }
    long toSend = store.transaction(tx -> {
      Map<EntryState, Long> c = tx.countByState();
      return c.getOrDefault(EntryState.PENDING, 0L) + c.getOrDefault(EntryState.SENDING, 0L);
    });
    syncListeners.forEach(l -> l.progress(pushed, pulled, toSend));
  }

  @FunctionalInterface
  private interface Step<T> {
    T run(String token) throws IOException, ApiError;
  }

  private <T> T withToken(Step<T> step) throws IOException, ApiError {
    try {
      return step.run(token());
    } catch (ApiError e) {
      if (!tokenRefused(e)) {
        throw e;
      }
      return step.run(renewToken());
    }
  }

  /**
   * An expired token, or one the server no longer knows (replaced by a renewal whose answer was
   * lost): the device key gets a new one, and the step goes once more.
   */
  private static boolean tokenRefused(ApiError e) {
    return e.code().equals("TOKEN_EXPIRED") || e.code().equals("UNAUTHENTICATED");
  }

  /** Trades a signed challenge for a new token (the old one stops working). */
  public String renewToken() throws IOException, ApiError {
    Map<String, String> s = store.transaction(tx -> Map.of(
        DEVICE_ID, tx.setting(DEVICE_ID).orElseThrow(() -> new ClientException("NOT_ENROLLED", "enroll this device first")),
        TENANT, tx.setting(TENANT).get(), KEY_SEED, tx.setting(KEY_SEED).get()));
    UUID device = UUID.fromString(s.get(DEVICE_ID));
    String challenge = api.challenge(device).challenge();
    String signature = signer(s.get(KEY_SEED)).sign(Envelopes.tokenSigningInput(s.get(TENANT), device, challenge));
    Token t = api.token(new TokenRequest(device, challenge, signature));
    store.transaction(tx -> {
      tx.putSetting(TOKEN, t.token());
      tx.putSetting(TOKEN_EXPIRES, t.expiresAt().toString());
      return null;
    });
    return t.token();
  }

  private void refreshSchemas() throws IOException, ApiError {
    Optional<String> tag = store.transaction(tx -> tx.setting(SCHEMAS).isPresent() ? tx.setting(SCHEMAS_TAG).filter(t -> !t.isEmpty())
        : Optional.<String>empty());
    ServerApi.Definitions answer = withToken(t -> api.collections(t, tag));
    if (!answer.changed().isPresent()) {
      return; // the definitions stored are current
    }
    List<CollectionDefinition> defs = answer.changed().get().collections();
    String text;
    try {
      text = Json.mapper().writeValueAsString(defs);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    store.transaction(tx -> {
      tx.putSetting(SCHEMAS, text);
      tx.putSetting(SCHEMAS_TAG, answer.etag().orElse("")); // "": untagged, fetch outright next time
      return null;
    });
    catalog = CollectionCatalog.of(defs);
  }

  /** A batch taken from the outbox for one push: its entries as they were before it was taken. */
  private record Batch(List<OutboxEntry> before) {
    PushRequest request() {
      return new PushRequest(before.stream().map(OutboxEntry::mutation).collect(Collectors.toList()));
    }

    Set<UUID> ids() {
      return before.stream().map(OutboxEntry::mutationId).collect(Collectors.toSet());
    }
  }

  /**
   * Pushes the outbox, batch after batch, in order; returns how many mutations went. One push is
   * on its way at a time (the server answers a device's pushes in the order it sent them), but
   * the device's own work runs while it is: the next batch is taken from the outbox while a push
   * crosses the link, and an answer is settled into the store while the next push crosses. On a
   * slow link that work would otherwise add to every push's round trip (tens of milliseconds a
   * batch here, more on a phone).
   */
  private int pushAll() throws IOException, ApiError {
    Batch flying = take(Set.of());
    if (flying == null) {
      return 0;
    }
    String[] token = {token()};
    Future<PushResponse> answer = send(token[0], flying);
    Batch next = null;
    int pushed = 0;
    try {
      while (true) {
        // Once the client is closing, the push on its way is the last (close() waits for it).
        next = closing ? null : take(flying.ids());
        PushResponse r = await(answer, flying, token);
        Batch done = flying;
        // From here `next` is on its way (or there is none): it must not be put back.
        flying = next;
        next = null;
        if (flying != null) {
          answer = send(token[0], flying);
        }
        settle(r);
        pushed += done.before().size();
        progress(pushed, 0);
        if (flying == null) {
          // Edits that waited for that answer become entries now.
          flying = closing ? null : take(Set.of());
          if (flying == null) {
            return pushed;
          }
          answer = send(token[0], flying);
        }
      }
    } catch (java.net.ConnectException | java.net.UnknownHostException | java.net.NoRouteToHostException notSent) {
      // Nothing left the device: its entries are as they were before this attempt, so edits made
      // offline still fold into them instead of waiting for an answer that cannot come.
      giveBack(flying);
      throw notSent;
    } finally {
      // A batch taken ahead never left the device, whatever ended the sync.
      giveBack(next);
    }
  }

  /**
   * Takes the next batch from the outbox (leaving out {@code flying}, the push on its way) and
   * marks it as sending; null when there is nothing to send.
   */
  private Batch take(Set<UUID> flying) {
    Instant now = clock.instant();
    List<OutboxEntry> batch = store.transaction(tx -> {
      materializeWaitingEdits(tx, now);
      // Sending entries are left from a push whose answer never came: they go again, unchanged.
      List<OutboxEntry> out = new ArrayList<>();
      for (OutboxEntry e : tx.entries(EnumSet.of(EntryState.PENDING, EntryState.SENDING), batchSize + flying.size())) {
        if (out.size() < batchSize && !flying.contains(e.mutationId())) {
          out.add(e);
        }
      }
      for (OutboxEntry e : out) {
        tx.putEntry(new OutboxEntry(e.mutation(), EntryState.SENDING, e.result(), e.attempts() + 1, e.createdAt(), now));
      }
      return out;
    });
    return batch.isEmpty() ? null : new Batch(batch);
  }

  /** Puts a batch that never left the device back as it was. */
  private void giveBack(Batch b) {
    if (b != null) {
      store.transaction(tx -> {
        b.before().forEach(tx::putEntry);
        return null;
      });
    }
  }

  private String token() {
    return store.transaction(tx -> tx.setting(TOKEN)).orElseThrow(() -> new ClientException("NOT_ENROLLED", "enroll this device first"));
  }

  /** Starts a push on the push thread. */
  private Future<PushResponse> send(String token, Batch b) {
    PushRequest request = b.request();
    try {
      return pusher.submit(() -> api.push(token, request));
    } catch (RejectedExecutionException closed) {
      // The client was closed during this sync: nothing left the device.
      CompletableFuture<PushResponse> none = new CompletableFuture<>();
      none.completeExceptionally(new java.net.ConnectException("the client is closed; nothing was sent"));
      return none;
    }
  }

  /**
   * Waits for a push's answer; an expired or unknown token is renewed by key and the push sent
   * again once, as {@link #withToken} does.
   */
  private PushResponse await(Future<PushResponse> answer, Batch b, String[] token) throws IOException, ApiError {
    for (boolean renewed = false; ; renewed = true) {
      try {
        return answerOf(answer);
      } catch (ApiError e) {
        if (renewed || !tokenRefused(e)) {
          throw e;
        }
        token[0] = renewToken();
        answer = send(token[0], b);
      }
    }
  }

  /**
   * The outcome of a push, waited for to its end: a sync never returns with its push still on
   * the link, or the next sync's first push could overtake it.
   */
  private static PushResponse answerOf(Future<PushResponse> answer) throws IOException, ApiError {
    boolean interrupted = false;
    try {
      while (true) {
        try {
          return answer.get();
        } catch (InterruptedException e) {
          interrupted = true;
        } catch (ExecutionException e) {
          Throwable cause = e.getCause();
          if (cause instanceof IOException io) {
            throw io;
          }
          if (cause instanceof ApiError api) {
            throw api;
          }
          if (cause instanceof RuntimeException re) {
            throw re;
          }
          if (cause instanceof Error err) {
            throw err;
          }
          throw new IllegalStateException(cause);
        }
      }
    } finally {
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /** Settles a push's answer into the outbox and the records, and tells the listeners. */
  private void settle(PushResponse r) {
    List<SyncEvent> events = new ArrayList<>();
    List<LocalRecord> changed = store.transaction(tx -> {
      List<LocalRecord> out = new ArrayList<>();
      for (MutationResult result : r.results()) {
        reconcile(tx, result, events, out);
      }
      return out;
    });
    publish(events, changed);
  }

  /** Turns edits that waited for an earlier change into entries, now that nothing is on its way. */
  private void materializeWaitingEdits(LocalTx tx, Instant now) {
    for (LocalRecord rec : tx.dirtyRecordsWithoutEntriesIn(IN_FLIGHT)) {
      Rebase.Diff d = Rebase.diff(rec.serverData(), rec.data());
      Mutation m = null;
      if (d instanceof Rebase.None) {
        tx.putRecord(new LocalRecord(rec.collection(), rec.recordId(), rec.serverVersion(), rec.serverData(), rec.data(), false, now));
      } else if (d instanceof Rebase.Delete) {
        if (rec.serverVersion() > 0) {
          m = newMutation(tx, rec.collection(), rec.recordId(), MutationOp.DELETE, rec.serverVersion(), null);
        } else {
          tx.removeRecord(rec.collection(), rec.recordId());
        }
      } else if (d instanceof Rebase.Patch p && rec.serverVersion() > 0 && rec.serverData() != null) {
        m = newMutation(tx, rec.collection(), rec.recordId(), MutationOp.UPDATE, rec.serverVersion(), p.fields());
      } else {
        m = newMutation(tx, rec.collection(), rec.recordId(), MutationOp.CREATE, 0, rec.data().deepCopy());
      }
      if (m != null) {
        tx.putEntry(new OutboxEntry(m, EntryState.PENDING, Optional.empty(), 0, now, now));
      }
    }
  }

  /** Applies the server's answer for one mutation to its entry and record. */
  private void reconcile(LocalTx tx, MutationResult result, List<SyncEvent> events, List<LocalRecord> changed) {
    Optional<OutboxEntry> found = tx.entry(result.mutationId());
    if (!found.isPresent()) {
      return; // an answer for an entry already settled (a replayed outcome)
    }
    OutboxEntry e = found.get();
    Mutation m = e.mutation();
    Optional<CollectionSchema> schema = schema(m.collection());
    Optional<LocalRecord> rec = tx.record(m.collection(), m.recordId());
    Rebase.Diff waiting = rec.map(r -> Rebase.diff(Rebase.replay(schema, r.serverData(), inFlight(tx, m.collection(), m.recordId())),
        r.data())).orElse(new Rebase.None());
    long version = rec.map(LocalRecord::serverVersion).orElse(0L);
    ObjectNode server = rec.map(LocalRecord::serverData).orElse(null);
    Instant now = clock.instant();
    switch (result.status()) {
      case APPLIED -> {
        server = Rebase.apply(schema, server, m);
        version = result.version() == null ? version : result.version();
        tx.removeEntry(m.mutationId());
      }
      case MERGED -> {
        ServerRecord sr = result.record();
        if (sr != null && sr.version() >= version) {
          server = sr.deleted() ? null : sr.data();
          version = sr.version();
        }
        tx.removeEntry(m.mutationId());
        events.add(new SyncEvent.Merged(m.collection(), m.recordId(), m.mutationId()));
      }
      case CONFLICT -> {
        if (result.serverRecord() != null && result.serverRecord().version() >= version) {
          server = result.serverRecord().deleted() ? null : result.serverRecord().data();
          version = result.serverRecord().version();
        }
        tx.putEntry(e.with(EntryState.CONFLICT, Optional.of(result), now));
        events.add(new SyncEvent.Conflict(m.collection(), m.recordId(), m.mutationId()));
      }
      case REJECTED -> {
        if (result.serverRecord() != null && result.serverRecord().version() >= version) {
          server = result.serverRecord().deleted() ? null : result.serverRecord().data();
          version = result.serverRecord().version();
        }
        tx.putEntry(e.with(EntryState.REJECTED, Optional.of(result), now));
        // The refused change is dropped from the view, and so are edits waiting on it.
        waiting = new Rebase.None();
        events.add(new SyncEvent.Rejected(m.collection(), m.recordId(), m.mutationId(),
            result.error() == null ? "REJECTED" : result.error().code(), result.error() == null ? "" : result.error().message()));
      }
      case HELD -> tx.putEntry(e.with(EntryState.HELD, Optional.of(result), now));
    }
    rebase(tx, m.collection(), m.recordId(), schema, version, server, waiting, now).ifPresent(changed::add);
  }

  /**
   * Rebuilds the local view from the server layer, the entries still on their way, and the edits
   * waiting on them; removes a record nobody has any more.
   */
  private Optional<LocalRecord> rebase(LocalTx tx, String collection, UUID id, Optional<CollectionSchema> schema, long version,
      ObjectNode server, Rebase.Diff waiting, Instant now) {
    List<OutboxEntry> flying = inFlight(tx, collection, id);
    ObjectNode view = Rebase.applyDiff(Rebase.replay(schema, server, flying), waiting);
    boolean dirty = !flying.isEmpty() || !(waiting instanceof Rebase.None);
    if (view == null && server == null && version == 0 && !dirty) {
      tx.removeRecord(collection, id);
      return Optional.of(new LocalRecord(collection, id, 0, null, null, false, now));
    }
    LocalRecord r = new LocalRecord(collection, id, version, server, view, dirty, now);
    tx.putRecord(r);
    return Optional.of(r);
  }

  /** One page of the change feed; returns {changes applied, 1 if more pages}. */
  private int[] pullOnce(String token) throws IOException, ApiError {
    Optional<String> cursor = store.transaction(tx -> tx.setting(PULL_CURSOR)).filter(c -> !c.isEmpty());
    PullResponse page;
    try {
      page = api.pull(token, cursor, pullPageSize);
    } catch (ApiError e) {
      // RESYNC_REQUIRED: the server compacted deletions this cursor has not seen.
      if (!(e.code().equals("CURSOR_INVALID") || e.code().equals("RESYNC_REQUIRED")) || !cursor.isPresent()) {
        throw e;
      }
      resetFeed();
      return new int[] {0, 1};
    }
    List<SyncEvent> events = new ArrayList<>();
    List<LocalRecord> changed = store.transaction(tx -> {
      List<LocalRecord> out = new ArrayList<>();
      for (Change c : page.changes()) {
        apply(tx, c, events, out);
      }
      tx.putSetting(PULL_CURSOR, page.cursor());
      return out;
    });
    publish(events, changed);
    return new int[] {page.changes().size(), page.hasMore() ? 1 : 0};
  }

  /**
   * The server no longer accepts the cursor (what the user may read changed, the server was
   * restored from a backup, or it compacted deletions the cursor has not seen): forget every record without local changes and download again from
   * the start. Records with changes on their way stay and are rebased as the feed returns them.
   */
  private void resetFeed() {
    List<LocalRecord> gone = store.transaction(tx -> {
      List<LocalRecord> out = new ArrayList<>();
      for (String name : catalog.names()) {
        for (LocalRecord r : tx.query(RecordQuery.all(name))) {
          if (!r.dirty()) {
            tx.removeRecord(r.collection(), r.recordId());
            out.add(new LocalRecord(r.collection(), r.recordId(), 0, null, null, false, clock.instant()));
          }
        }
      }
      tx.putSetting(PULL_CURSOR, "");
      return out;
    });
    publish(List.of(), gone);
  }

  private void apply(LocalTx tx, Change c, List<SyncEvent> events, List<LocalRecord> changed) {
    Instant now = clock.instant();
    if (c.op() == ChangeOp.REMOVE) {
      tx.removeRecord(c.collection(), c.recordId());
      events.add(new SyncEvent.Removed(c.collection(), c.recordId()));
      changed.add(new LocalRecord(c.collection(), c.recordId(), 0, null, null, false, now));
      return;
    }
    Optional<CollectionSchema> schema = schema(c.collection());
    Optional<LocalRecord> rec = tx.record(c.collection(), c.recordId());
    if (rec.isPresent() && rec.get().serverVersion() > c.version()) {
      return; // older than what a push answer already told us
    }
    Rebase.Diff waiting = rec.map(r -> Rebase.diff(Rebase.replay(schema, r.serverData(), inFlight(tx, c.collection(), c.recordId())),
        r.data())).orElse(new Rebase.None());
    ObjectNode server = c.op() == ChangeOp.DELETE ? null : c.data();
    rebase(tx, c.collection(), c.recordId(), schema, c.version(), server, waiting, now).ifPresent(changed::add);
  }

  /** One page of outcomes of held, parked or refused changes; returns {outcomes applied, 1 if more}. */
  private int[] outcomesOnce(String token) throws IOException, ApiError {
    boolean waiting = store.transaction(tx -> !tx.entries(EnumSet.of(EntryState.HELD, EntryState.CONFLICT, EntryState.REJECTED), 1)
        .isEmpty());
    if (!waiting) {
      return new int[] {0, 0};
    }
    Optional<String> cursor = store.transaction(tx -> tx.setting(OUTCOMES_CURSOR));
    OutcomesResponse page = api.outcomes(token, cursor);
    List<SyncEvent> events = new ArrayList<>();
    List<LocalRecord> changed = store.transaction(tx -> {
      List<LocalRecord> out = new ArrayList<>();
      for (MutationResult r : page.outcomes()) {
        Optional<OutboxEntry> e = tx.entry(r.mutationId());
        if (r.status() == org.civicsync.contracts.MutationStatus.REJECTED && e.isPresent()
            && (e.get().state() == EntryState.REJECTED || e.get().state() == EntryState.CONFLICT)) {
          // A refused or parked change a supervisor dismissed: it is already out of the view.
          tx.putEntry(e.get().with(EntryState.REJECTED, Optional.of(r), clock.instant()));
          continue;
        }
        reconcile(tx, r, events, out);
      }
      tx.putSetting(OUTCOMES_CURSOR, page.cursor());
      return out;
    });
    publish(events, changed);
    return new int[] {page.outcomes().size(), page.hasMore() ? 1 : 0};
  }

  private void publish(List<SyncEvent> events, List<LocalRecord> changed) {
    for (LocalRecord r : changed) {
      Optional<ObjectNode> data = Optional.ofNullable(r.data()).map(ObjectNode::deepCopy);
      recordListeners.forEach(l -> l.changed(r.collection(), r.recordId(), data));
    }
    for (SyncEvent e : events) {
      syncListeners.forEach(l -> l.event(e));
    }
  }

  private void publishStatus() {
    ClientStatus s = status();
    syncListeners.forEach(l -> l.status(s));
  }

  // ---------------------------------------------------------------- status and outbox

  public ClientStatus status() {
    return store.transaction(tx -> {
      Map<EntryState, Long> counts = tx.countByState();
      // Edits waiting for an earlier change of their record (no entry yet) count as pending too. The
      // entries on their way are read once and grouped: a query per dirty record made this O(outbox)
      // round trips to the store, on every call.
      Map<RecordKey, List<OutboxEntry>> sent = new HashMap<>();
      for (OutboxEntry e : tx.entries(IN_FLIGHT, Integer.MAX_VALUE)) {
        sent.computeIfAbsent(new RecordKey(e.mutation().collection(), e.mutation().recordId()), k -> new ArrayList<>()).add(e);
      }
      long waitingEdits = tx.dirtyRecords().stream().filter(r -> !(Rebase.diff(Rebase.replay(schema(r.collection()), r.serverData(),
          sent.getOrDefault(new RecordKey(r.collection(), r.recordId()), List.of())), r.data()) instanceof Rebase.None)).count();
      long pending = counts.getOrDefault(EntryState.PENDING, 0L) + counts.getOrDefault(EntryState.SENDING, 0L)
          + counts.getOrDefault(EntryState.HELD, 0L) + waitingEdits;
      return new ClientStatus(pending, counts.getOrDefault(EntryState.REJECTED, 0L), counts.getOrDefault(EntryState.CONFLICT, 0L),
          tx.setting(LAST_SYNC).map(Instant::parse), online, api.wireBytes(), liveUpdates.live());
    });
  }

  /** Every outbox entry, by deviceSeq. */
  public List<OutboxEntry> outbox() {
    return store.transaction(tx -> tx.entries(EnumSet.allOf(EntryState.class), Integer.MAX_VALUE));
  }

  /** Forgets refused entries the user has seen (they are kept until then for the app to show). */
  public void acknowledgeRejections() {
    store.transaction(tx -> {
      tx.entries(EnumSet.of(EntryState.REJECTED), Integer.MAX_VALUE).forEach(e -> tx.removeEntry(e.mutationId()));
      return null;
    });
  }

  // ---------------------------------------------------------------- background sync

  /** Starts background sync: now, after local writes, on a schedule, and with backoff after failures. */
  public void start() {
    started = true;
    poke(new SyncEngine.Started());
    // The live stream, where the transport can hold one: a sync as soon as the server has news.
    liveUpdates.start();
  }

  /** Tells the client the network came back (e.g. from Android's connectivity callback): sync soon. */
  public void networkAvailable() {
    networkUp = true;
    poke(new SyncEngine.WentOnline());
    liveUpdates.wake();
  }

  public void networkLost() {
    networkUp = false;
    poke(new SyncEngine.WentOffline());
  }

  private void poke(SyncEngine.Event e) {
    scheduler.execute(() -> run(engine.on(e)));
  }

  /** Carries out the engine's instructions on the sync thread, feeding results back as events. */
  private void run(List<SyncEngine.Instruction> instructions) {
    for (SyncEngine.Instruction i : instructions) {
      SyncEngine.Event next;
      // One sync at a time: a background step and an app's sync() never overlap.
      synchronized (syncLock) {
        next = step(i);
      }
      if (next != null) {
        run(engine.on(next));
      }
    }
  }

  /** One instruction; returns the event it leads to, or null when it leads to none. */
  private SyncEngine.Event step(SyncEngine.Instruction i) {
    try {
      if (i instanceof SyncEngine.Push) {
        refreshSchemasQuietly();
        return new SyncEngine.PushDone(pushAll() > 0);
      } else if (i instanceof SyncEngine.Pull) {
        return new SyncEngine.PullDone(withToken(this::pullOnce)[1] == 1);
      } else if (i instanceof SyncEngine.FetchOutcomes) {
        return new SyncEngine.OutcomesDone(withToken(this::outcomesOnce)[1] == 1);
      } else if (i instanceof SyncEngine.RenewToken) {
        renewToken();
        return new SyncEngine.TokenRenewed();
      } else if (i instanceof SyncEngine.Wait w) {
        if (timer != null) {
          timer.cancel(false);
        }
        timer = scheduler.schedule(() -> run(engine.on(new SyncEngine.TimerFired())), Math.max(1, w.delay().toMillis()),
            TimeUnit.MILLISECONDS);
      } else if (i instanceof SyncEngine.Halted) {
        online = false;
        syncListeners.forEach(l -> l.stopped("the server refused this device (revoked, or unknown after renewal failed)"));
      } else if (i instanceof SyncEngine.Synced) {
        online = true;
        Instant at = clock.instant();
        store.transaction(tx -> {
          tx.putSetting(LAST_SYNC, at.toString());
          return null;
        });
        publishStatus();
      }
    } catch (IOException ex) {
      online = false;
      publishStatus();
      return new SyncEngine.Failed(SyncEngine.Failure.NETWORK);
    } catch (ApiError ex) {
      return switch (ex.code()) {
        case "TOKEN_EXPIRED" -> new SyncEngine.Failed(SyncEngine.Failure.TOKEN_EXPIRED);
        case "RATE_LIMITED" -> new SyncEngine.Failed(SyncEngine.Failure.RATE_LIMITED, ex.retryAfterSeconds().map(Duration::ofSeconds));
        case "DEVICE_REVOKED", "UNAUTHENTICATED" -> new SyncEngine.Failed(SyncEngine.Failure.FATAL);
        default -> new SyncEngine.Failed(ex.status() >= 500 ? SyncEngine.Failure.NETWORK : SyncEngine.Failure.FATAL);
      };
    } catch (RuntimeException ex) {
      return new SyncEngine.Failed(SyncEngine.Failure.NETWORK);
    }
    return null;
  }

  private void refreshSchemasQuietly() throws IOException, ApiError {
    if (!store.transaction(tx -> tx.setting(SCHEMAS)).isPresent()) {
      refreshSchemas();
    }
  }

  /** The engine's phase (for tests and diagnostics). */
  public SyncEngine.Phase phase() {
    return engine.phase();
  }

  @Override
  public void close() {
    closing = true;
    liveUpdates.close();
    poke(new SyncEngine.Stopped());
    scheduler.shutdown();
    pusher.shutdown();
    try {
      scheduler.awaitTermination(10, TimeUnit.SECONDS);
      pusher.awaitTermination(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
