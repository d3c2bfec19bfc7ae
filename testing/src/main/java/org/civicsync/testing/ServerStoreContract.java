package org.civicsync.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.CreateTenantRequest;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.MutationStatus;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.InboxItemView;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.ResolveResponse;
import org.civicsync.contracts.ResolveRequest;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.json.Json;
import org.civicsync.server.ApiException;
import org.civicsync.server.projection.ProjectionRebuilder;
import org.civicsync.server.pull.Cursor;
import org.civicsync.server.pull.PullService;
import org.civicsync.server.push.PushService;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.PullPage;
import org.civicsync.server.store.RecordKey;
import org.civicsync.server.store.ServerStore;
import org.civicsync.server.store.StoredRecord;
import org.civicsync.server.tenancy.Caller;
import org.civicsync.server.tenancy.TenancyService;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;
import org.junit.jupiter.api.TestInstance;

/**
 * The one contract every {@link ServerStore} must pass, run through the real services. A store
 * module subclasses it and says how to open its store; each test works in a tenant of its own, so
 * one store serves the whole class and tenant isolation is exercised all along.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class ServerStoreContract {
  private static final AtomicInteger TENANTS = new AtomicInteger();

  protected ServerStore store;
  private CollectionCatalog catalog;
  private TenancyService tenancy;
  private PushService push;
  private PullService pull;
  private org.civicsync.server.inbox.InboxService inbox;
  private Fixtures fx;
  private Caller.Device device;

  /** Opens a fresh, empty, migrated store. Called once per test class. */
  protected abstract ServerStore openStore();

  @BeforeAll
  void openOnce() {
    store = openStore();
    catalog = CollectionCatalog.of(CollectionCatalog.builtInDefinitions());
    tenancy = new TenancyService(store, Clock.systemUTC());
    push = new PushService(store, catalog, Clock.systemUTC());
    pull = new PullService(store, catalog, Clock.systemUTC());
    inbox = new org.civicsync.server.inbox.InboxService(store, catalog, Clock.systemUTC());
  }

  @AfterAll
  void closeOnce() {
    store.close();
  }

  @BeforeEach
  void freshTenant(TestInfo info) {
    fx = new Fixtures(info.getDisplayName().hashCode());
    device = newDevice(newTenant());
  }

  // ---------------------------------------------------------------- applying

  @Test
  void createIsAppliedAsVersionOneAndAppearsInTheFeed() {
    UUID id = fx.uuid();
    MutationResult r = push(fx.create(id)).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(r.version()).isEqualTo(1);
    List<Change> feed = pullAll(device, Set.of());
    assertThat(feed).singleElement().satisfies(c -> {
      assertThat(c.recordId()).isEqualTo(id);
      assertThat(c.op()).isEqualTo(ChangeOp.UPSERT);
      assertThat(c.version()).isEqualTo(1);
      assertThat(c.data().path("status").asText()).as("schema default filled in").isEqualTo("booked");
    });
  }

  @Test
  void updateReplacesGivenFieldsAndRemovesNullFields() {
    UUID id = fx.uuid();
    push(fx.create(id));
    ObjectNode patch = Fixtures.patch("status", "checked_in");
    patch.putNull("patientPhone");
    MutationResult r = push(fx.update(id, 1, patch)).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(r.version()).isEqualTo(2);
    Change c = pullAll(device, Set.of()).get(0);
    assertThat(c.data().path("status").asText()).isEqualTo("checked_in");
    assertThat(c.data().has("patientPhone")).isFalse();
    assertThat(c.data().path("patientName").asText()).isNotEmpty();
  }

  @Test
  void deleteLeavesATombstoneInTheFeed() {
    UUID id = fx.uuid();
    push(fx.create(id));
    MutationResult r = push(fx.delete(id, 1)).get(0);
    assertThat(r.version()).isEqualTo(2);
    Change c = pullAll(device, Set.of()).get(0);
    assertThat(c.op()).isEqualTo(ChangeOp.DELETE);
    assertThat(c.version()).isEqualTo(2);
    assertThat(c.data()).isNull();
  }

  @Test
  void mutationsOfOneRecordInOnePushApplyInOrder() {
    UUID id = fx.uuid();
    List<MutationResult> rs = push(fx.create(id), fx.update(id, 1, Fixtures.patch("status", "checked_in")),
        fx.update(id, 2, Fixtures.patch("status", "completed")));
    assertThat(rs).extracting(MutationResult::version).containsExactly(1L, 2L, 3L);
    assertThat(pullAll(device, Set.of())).singleElement()
        .satisfies(c -> assertThat(c.data().path("status").asText()).isEqualTo("completed"));
  }

  @Test
  void aPushOfAThousandMutationsIsAppliedWhole() {
    List<Mutation> ms = new ArrayList<>();
    for (int i = 0; i < 1000; i++) {
      ms.add(fx.create(fx.uuid()));
    }
    List<MutationResult> rs = push(ms.toArray(Mutation[]::new));
    assertThat(rs).hasSize(1000).allMatch(r -> r.status() == MutationStatus.APPLIED);
    assertThat(pullAll(device, Set.of())).hasSize(1000);
  }

  // ---------------------------------------------------------------- rejecting

  @Test
  void schemaViolationIsRejectedWithTheFieldAndDoesNotBlockTheRest() {
    ObjectNode bad = fx.appointment();
    bad.remove("clinicId");
    UUID good = fx.uuid();
    List<MutationResult> rs = push(fx.create(fx.uuid(), bad), fx.create(good));
    assertThat(rs.get(0).status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(rs.get(0).error().code()).isEqualTo("VALIDATION_FAILED");
    assertThat(rs.get(0).error().field()).isEqualTo("/data/clinicId");
    assertThat(rs.get(1).status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(pullAll(device, Set.of())).extracting(Change::recordId).containsExactly(good);
  }

  @Test
  void updateThatBreaksTheSchemaIsRejectedAndChangesNothing() {
    UUID id = fx.uuid();
    push(fx.create(id));
    MutationResult r = push(fx.update(id, 1, Fixtures.patch("slotStart", "next tuesday"))).get(0);
    assertThat(r.error().code()).isEqualTo("VALIDATION_FAILED");
    assertThat(r.error().field()).isEqualTo("/data/slotStart");
    assertThat(pullAll(device, Set.of()).get(0).version()).isEqualTo(1);
  }

  @Test
  void unknownCollectionIsRejected() {
    Mutation m = fx.create(fx.uuid());
    Mutation other = new Mutation(m.mutationId(), m.deviceSeq(), "land_parcels", m.recordId(), MutationOp.CREATE, 0, m.data(), m.hlc(), m.clientTime());
    assertThat(push(other).get(0).error().code()).isEqualTo("UNKNOWN_COLLECTION");
  }

  @Test
  void createOfAnExistingOrDeletedRecordIsRejected() {
    UUID id = fx.uuid();
    push(fx.create(id));
    assertThat(push(fx.create(id)).get(0).error().code()).isEqualTo("RECORD_EXISTS");
    push(fx.delete(id, 1));
    assertThat(push(fx.create(id)).get(0).error().code()).isEqualTo("RECORD_EXISTS");
  }

  @Test
  void updateOrDeleteOfAMissingRecordIsRejected() {
    assertThat(push(fx.update(fx.uuid(), 1, Fixtures.patch("status", "completed"))).get(0).error().code())
        .isEqualTo("RECORD_NOT_FOUND");
    assertThat(push(fx.delete(fx.uuid(), 1)).get(0).error().code()).isEqualTo("RECORD_NOT_FOUND");
  }

  @Test
  void updateOfARecordWhoseDeletionTheClientSawIsRejected() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.delete(id, 1));
    assertThat(push(fx.update(id, 2, Fixtures.patch("status", "completed"))).get(0).error().code())
        .isEqualTo("RECORD_DELETED");
  }

  @Test
  void baseVersionNewerThanTheServersIsRejected() {
    UUID id = fx.uuid();
    push(fx.create(id));
    assertThat(push(fx.update(id, 5, Fixtures.patch("status", "completed"))).get(0).error().code())
        .isEqualTo("INVALID_BASE_VERSION");
  }

  // ---------------------------------------------------------------- conflicts

  @Test
  void staleChangeToAFieldChangedOnBothSidesIsParkedInTheInbox() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    MutationResult r = push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000002"))).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.CONFLICT);
    assertThat(r.error().code()).isEqualTo("VERSION_CONFLICT");
    assertThat(r.conflictFields()).containsExactly("patientPhone");
    assertThat(r.serverRecord().version()).isEqualTo(2);
    assertThat(r.serverRecord().data().path("patientPhone").asText()).isEqualTo("+94770000001");
    assertThat(pullAll(device, Set.of()).get(0).version()).as("nothing applied").isEqualTo(2);
    List<org.civicsync.server.store.InboxItem> inbox =
        store.inbox(device.tenantId(), Optional.of("open"), Optional.of("conflict"), Optional.empty(), 10);
    assertThat(inbox).singleElement().satisfies(i -> {
      assertThat(i.id()).isEqualTo(r.conflictId());
      assertThat(i.recordId()).isEqualTo(id);
      assertThat(i.detail().at("/base/version").asLong()).isEqualTo(1);
      assertThat(i.detail().at("/server/data/patientPhone").asText()).isEqualTo("+94770000001");
      assertThat(i.detail().at("/client/data/patientPhone").asText()).isEqualTo("+94770000002");
    });
  }

  @Test
  void staleChangeToFieldsTheServerDidNotTouchIsMergedOnTopOfIt() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    MutationResult r = push(fx.update(id, 1, Fixtures.patch("clinicId", "clinic-moved"))).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.MERGED);
    assertThat(r.version()).isEqualTo(3);
    assertThat(r.overriddenFields()).isEmpty();
    assertThat(r.record().data().path("patientPhone").asText()).isEqualTo("+94770000001");
    assertThat(r.record().data().path("clinicId").asText()).isEqualTo("clinic-moved");
    assertThat(pullAll(device, Set.of()).get(0).data()).isEqualTo(r.record().data());
  }

  @Test
  void staleMoveOfAMonotonicStatusThatTheServerPassedIsDroppedAndReported() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("status", "checked_in")));
    MutationResult r = push(fx.update(id, 1, Fixtures.patch("status", "cancelled"))).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.MERGED);
    assertThat(r.overriddenFields()).containsExactly("status");
    assertThat(r.record().data().path("status").asText()).isEqualTo("checked_in");
  }

  @Test
  void currentMoveOfAMonotonicStatusBackwardsIsRejected() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("status", "checked_in")));
    MutationResult r = push(fx.update(id, 2, Fixtures.patch("status", "booked"))).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(r.error().code()).isEqualTo("INVALID_TRANSITION");
    assertThat(r.error().field()).isEqualTo("/data/status");
  }

  @Test
  void staleUpdateOfARecordDeletedMeanwhileLosesToTheDeleteAndShowsTheTombstone() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.delete(id, 1));
    MutationResult r = push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000009"))).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(r.error().code()).isEqualTo("RECORD_DELETED");
    assertThat(r.serverRecord().deleted()).isTrue();
    assertThat(r.serverRecord().data()).isNull();
  }

  @Test
  void staleDeleteOfARecordUpdatedMeanwhileWinsAndIsReported() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    MutationResult r = push(fx.delete(id, 1)).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.MERGED);
    assertThat(r.resolution()).isEqualTo("deleteWins");
    assertThat(r.version()).isEqualTo(3);
    assertThat(pullAll(device, Set.of()).get(0).op()).isEqualTo(ChangeOp.DELETE);
  }

  @Test
  void theBaseOfAStaleChangeMayComeFromEarlierInTheSamePush() {
    UUID id = fx.uuid();
    List<MutationResult> rs = push(fx.create(id), fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")),
        fx.update(id, 1, Fixtures.patch("clinicId", "clinic-7")));
    assertThat(rs.get(2).status()).isEqualTo(MutationStatus.MERGED);
    assertThat(rs.get(2).record().data().path("patientPhone").asText()).isEqualTo("+94770000001");
    assertThat(rs.get(2).record().data().path("clinicId").asText()).isEqualTo("clinic-7");
  }

  // ---------------------------------------------------------------- server-authoritative rules

  /**
   * The last slot: devices that each booked the same clinic slot offline push at the same moment.
   * Exactly one booking stands; every other gets the capacity rule's message.
   */
  @Test
  void whenDevicesRaceForTheLastSlotExactlyOneBookingStands() throws Exception {
    int slots = 12;
    int devices = 4;
    List<Caller.Device> ds = new ArrayList<>();
    for (int i = 0; i < devices; i++) {
      ds.add(newDevice(device.tenantId()));
    }
    ExecutorService pool = Executors.newFixedThreadPool(devices);
    try {
      for (int slot = 0; slot < slots; slot++) {
        ObjectNode booking = fx.appointment();
        CountDownLatch go = new CountDownLatch(1);
        List<Future<MutationResult>> fs = new ArrayList<>();
        for (Caller.Device d : ds) {
          Fixtures own = new Fixtures(fx.uuid().getMostSignificantBits());
          Mutation m = own.create(own.uuid(), booking.deepCopy().put("patientName", "patient of " + d.deviceId()));
          fs.add(pool.submit(() -> {
            go.await();
            return push.push(d, TestDevices.signed(d, List.of(m))).results().get(0);
          }));
        }
        go.countDown();
        int applied = 0;
        for (Future<MutationResult> f : fs) {
          MutationResult r = f.get(60, TimeUnit.SECONDS);
          if (r.status() == MutationStatus.APPLIED) {
            applied++;
          } else {
            assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
            assertThat(r.error().code()).isEqualTo("CAPACITY_EXCEEDED");
            assertThat(r.error().message()).contains("is full").contains(booking.get("clinicId").asText());
          }
        }
        assertThat(applied).as("bookings standing for slot %s", slot).isEqualTo(1);
      }
    } finally {
      pool.shutdown();
    }
    assertThat(pullAll(device, Set.of())).hasSize(slots);
  }

  @Test
  void aCancelledBookingFreesItsSlot() {
    ObjectNode slot = fx.appointment();
    UUID first = fx.uuid();
    push(fx.create(first, slot.deepCopy()));
    assertThat(push(fx.create(fx.uuid(), slot.deepCopy())).get(0).error().code()).isEqualTo("CAPACITY_EXCEEDED");
    push(fx.update(first, 1, Fixtures.patch("status", "cancelled")));
    assertThat(push(fx.create(fx.uuid(), slot.deepCopy())).get(0).status()).isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void aBookingMovesOnlyToAFreeSlotAndReleasesItsOldOne() {
    ObjectNode taken = fx.appointment();
    push(fx.create(fx.uuid(), taken.deepCopy()));
    ObjectNode original = fx.appointment();
    UUID moving = fx.uuid();
    push(fx.create(moving, original.deepCopy()));
    ObjectNode ontoTaken = Fixtures.patch("clinicId", taken.get("clinicId").asText()).put("slotStart", taken.get("slotStart").asText());
    assertThat(push(fx.update(moving, 1, ontoTaken)).get(0).error().code()).isEqualTo("CAPACITY_EXCEEDED");
    ObjectNode free = fx.appointment();
    ObjectNode ontoFree = Fixtures.patch("clinicId", free.get("clinicId").asText()).put("slotStart", free.get("slotStart").asText());
    assertThat(push(fx.update(moving, 1, ontoFree)).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(push(fx.create(fx.uuid(), original.deepCopy())).get(0).status()).as("the old slot is free again")
        .isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void aClinicsOwnSlotCapacityComesFromTheClinicsTable() {
    ObjectNode clinic = Json.mapper().createObjectNode().put("clinicId", "clinic-big").put("name", "Badulla General OPD")
        .put("slotCapacity", 2);
    assertThat(push(fx.mutation("clinics", fx.uuid(), MutationOp.CREATE, 0, clinic)).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    ObjectNode slot = fx.appointment().put("clinicId", "clinic-big");
    List<MutationResult> rs = push(fx.create(fx.uuid(), slot.deepCopy()), fx.create(fx.uuid(), slot.deepCopy()),
        fx.create(fx.uuid(), slot.deepCopy()));
    assertThat(rs).extracting(MutationResult::status)
        .containsExactly(MutationStatus.APPLIED, MutationStatus.APPLIED, MutationStatus.REJECTED);
    assertThat(rs.get(2).error().message()).contains("clinic-big is full (2 booking(s) per slot)");
    ObjectNode unlisted = fx.appointment().put("clinicId", "clinic-unlisted");
    List<MutationResult> other = push(fx.create(fx.uuid(), unlisted.deepCopy()), fx.create(fx.uuid(), unlisted.deepCopy()));
    assertThat(other.get(1).error().code()).as("a clinic not in the table keeps the rule's own limit").isEqualTo("CAPACITY_EXCEEDED");
    assertThat(push(fx.mutation("clinics", fx.uuid(), MutationOp.CREATE, 0, clinic.deepCopy())).get(0).error().code())
        .as("one record per clinic").isEqualTo("UNIQUE_VIOLATION");
  }

  @Test
  void manyLookupsByFieldInOneGoFindWhatEachWouldFindAlone() {
    UUID gone = fx.uuid();
    for (String[] c : new String[][] {{"clinic-a", "Ella"}, {"clinic-b", "Ella"}, {"clinic-c", "Hali-Ela"}}) {
      ObjectNode clinic = Json.mapper().createObjectNode().put("clinicId", c[0]).put("name", c[1]).put("slotCapacity", 3);
      push(fx.mutation("clinics", c[0].equals("clinic-c") ? gone : fx.uuid(), MutationOp.CREATE, 0, clinic));
    }
    assertThat(push(fx.mutation("clinics", gone, MutationOp.DELETE, 1, null)).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    List<Map<String, String>> lookups = List.of(Map.of("clinicId", "clinic-b"), Map.of("clinicId", "clinic-none"),
        Map.of("clinicId", "clinic-a", "name", "Ella"), Map.of("clinicId", "clinic-a", "name", "Badulla"), Map.of("clinicId", "clinic-c"),
        Map.of("name", "Ella"), Map.of("clinicId", "clinic-b"));
    store.write(device.tenantId(), tx -> {
      List<Optional<org.civicsync.server.store.StoredRecord>> many = tx.firstByFields("clinics", lookups);
      assertThat(many).hasSize(lookups.size());
      for (int i = 0; i < lookups.size(); i++) {
        assertThat(many.get(i)).as("lookup %s", lookups.get(i)).isEqualTo(tx.findByFields("clinics", lookups.get(i), 1).stream().findFirst());
      }
      assertThat(many.get(0)).isPresent();
      assertThat(many.get(1)).as("no such clinic").isEmpty();
      assertThat(many.get(3)).as("both fields must match").isEmpty();
      assertThat(many.get(4)).as("a deleted record is not found").isEmpty();
      assertThat(tx.firstByFields("clinics", List.of())).isEmpty();
      return null;
    });
  }

  @Test
  void twoBookingsOfOneSlotInOnePushLetOnlyTheFirstStand() {
    ObjectNode slot = fx.appointment();
    List<MutationResult> rs = push(fx.create(fx.uuid(), slot.deepCopy()), fx.create(fx.uuid(), slot.deepCopy()));
    assertThat(rs.get(0).status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(rs.get(1).error().code()).isEqualTo("CAPACITY_EXCEEDED");
  }

  @Test
  void aFarmerHasAtMostOneOpenClaimPerCropAndSeason() {
    ObjectNode claim = Json.mapper().createObjectNode().put("farmerId", "F-77120").put("crop", "paddy").put("season", "maha-2026");
    UUID first = fx.uuid();
    assertThat(push(fx.mutation("subsidy_claims", first, MutationOp.CREATE, 0, claim.deepCopy())).get(0).status())
        .isEqualTo(MutationStatus.APPLIED);
    MutationResult dup = push(fx.mutation("subsidy_claims", fx.uuid(), MutationOp.CREATE, 0, claim.deepCopy())).get(0);
    assertThat(dup.error().code()).isEqualTo("UNIQUE_VIOLATION");
    assertThat(dup.error().message()).isEqualTo("Farmer F-77120 already has an open paddy claim for maha-2026.");
    push(fx.mutation("subsidy_claims", first, MutationOp.UPDATE, 1, Fixtures.patch("status", "verified")));
    push(fx.mutation("subsidy_claims", first, MutationOp.UPDATE, 2, Fixtures.patch("status", "rejected")));
    assertThat(push(fx.mutation("subsidy_claims", fx.uuid(), MutationOp.CREATE, 0, claim.deepCopy())).get(0).status())
        .as("a rejected claim is closed").isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void claimsSurviveARebuildOfTheProjection() {
    ObjectNode slot = fx.appointment();
    push(fx.create(fx.uuid(), slot.deepCopy()));
    new ProjectionRebuilder(store, catalog).rebuild(device.tenantId());
    assertThat(push(fx.create(fx.uuid(), slot.deepCopy())).get(0).error().code()).isEqualTo("CAPACITY_EXCEEDED");
  }

  @Test
  void aRuleWrittenInJavaCanRefuseAChange() {
    PushService strict = new PushService(store, catalog, Clock.systemUTC(), java.time.Duration.ofHours(24), List.of(
        in -> in.after().data().path("patientName").asText().isBlank() || !in.after().data().path("patientName").asText().startsWith("Test ")
            ? Optional.empty() : Optional.of("test patients may not be booked in production")));
    ObjectNode data = fx.appointment().put("patientName", "Test Patient");
    MutationResult r = strict.push(device, TestDevices.signed(device, List.of(fx.create(fx.uuid(), data)))).results().get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(r.error().code()).isEqualTo("RULE_VIOLATION");
    assertThat(r.error().message()).isEqualTo("test patients may not be booked in production");
  }

  @Test
  void aChangeFromAClockFarAheadIsRejected() {
    Mutation m = fx.create(fx.uuid());
    String future = new org.civicsync.core.clock.Hlc(System.currentTimeMillis() + 3 * 86_400_000L, 0, "dev").toString();
    Mutation ahead = new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), m.recordId(), m.op(), 0, m.data(), future, m.clientTime());
    MutationResult r = push(ahead).get(0);
    assertThat(r.error().code()).isEqualTo("CLOCK_SKEW");
    assertThat(r.error().field()).isEqualTo("/hlc");
    assertThat(store.inbox(device.tenantId(), Optional.empty(), Optional.empty(), Optional.empty(), 10))
        .as("the device fixes its clock; nothing for a person").isEmpty();
  }

  // ---------------------------------------------------------------- the inbox and outcomes

  private MutationResult parkPhoneConflict(UUID id) {
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    MutationResult parked = push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000002"))).get(0);
    assertThat(parked.status()).isEqualTo(MutationStatus.CONFLICT);
    return parked;
  }

  @Test
  void aCommitIsAnnouncedWithWhatItTouchedAndARolledBackOneIsNot() throws Exception {
    List<org.civicsync.server.store.CommitNotice> heard = new java.util.concurrent.CopyOnWriteArrayList<>();
    try (AutoCloseable sub = store.onCommit(heard::add)) {
      Mutation booking = fx.create(fx.uuid());
      java.time.Instant before = java.time.Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MICROS);
      push(booking);
      java.time.Instant after = java.time.Instant.now();
      org.civicsync.server.store.CommitNotice first = awaitNotice(heard, store.head(device.tenantId()));
      assertThat(first.committedAt()).as("stamped as it commits").isBetween(before, after);
      assertThat(first.everything()).isFalse();
      assertThat(first.touched()).contains(new org.civicsync.server.store.CommitNotice.Touch("appointments",
          Optional.of(booking.data().get("clinicId").asText())));

      assertThatThrownBy(() -> store.write(device.tenantId(), tx -> {
        tx.announce(org.civicsync.server.store.CommitNotice.everything(device.tenantId(), 999_999));
        throw new IllegalStateException("rolled back");
      })).hasMessage("rolled back");
      push(fx.create(fx.uuid()));
      // Notices arrive in commit order, so had the rolled-back one been sent it would be here by now.
      awaitNotice(heard, store.head(device.tenantId()));
      assertThat(heard).noneMatch(n -> n.head() == 999_999);
    }
  }

  private org.civicsync.server.store.CommitNotice awaitNotice(List<org.civicsync.server.store.CommitNotice> heard, long head)
      throws InterruptedException {
    long deadline = System.nanoTime() + java.time.Duration.ofSeconds(10).toNanos();
    while (System.nanoTime() < deadline) {
      for (org.civicsync.server.store.CommitNotice n : heard) {
        if (n.tenantId().equals(device.tenantId()) && n.head() == head) {
          return n;
        }
      }
      Thread.sleep(10);
    }
    throw new AssertionError("no commit notice for head " + head + " of " + device.tenantId() + " within 10 s; heard " + heard);
  }

  // ---------------------------------------------------------------- the outbox of domain events

  private List<org.civicsync.server.store.OutboxEvent> outbox() {
    return store.unpublishedEvents(100_000).stream().filter(e -> e.tenantId().equals(device.tenantId())).toList();
  }

  @Test
  void everyCommittedChangeIsWrittenToTheOutboxOnceWhenEventsAreOn() throws Exception {
    PushService withEvents = new PushService(org.civicsync.server.audit.AuditedStore.wrap(store, catalog, Clock.systemUTC())
        .withDomainEvents(true), catalog, Clock.systemUTC());
    UUID id = fx.uuid();
    Mutation create = fx.create(id);
    Mutation checkIn = fx.update(id, 1, Fixtures.patch("status", "checked_in"));
    Mutation backwards = fx.update(id, 2, Fixtures.patch("status", "booked"));
    org.civicsync.contracts.PushRequest batch = TestDevices.signed(device, List.of(create, checkIn, backwards));
    assertThat(withEvents.push(device, batch).results()).extracting(MutationResult::status)
        .containsExactly(MutationStatus.APPLIED, MutationStatus.APPLIED, MutationStatus.REJECTED);
    withEvents.push(device, batch); // a replay changes nothing, so it publishes nothing
    push(fx.create(fx.uuid())); // events off: no row

    List<org.civicsync.server.store.OutboxEvent> events = outbox();
    assertThat(events).extracting(org.civicsync.server.store.OutboxEvent::subject)
        .containsExactly("civicsync." + device.tenantId() + ".appointments.create", "civicsync." + device.tenantId() + ".appointments.update");
    org.civicsync.core.validation.SchemaChecker schema = org.civicsync.core.validation.SchemaChecker.contract("domain-event.schema.json");
    for (org.civicsync.server.store.OutboxEvent e : events) {
      com.fasterxml.jackson.databind.JsonNode json = org.civicsync.core.json.Json.mapper().readTree(e.payload());
      assertThat(schema.violations(json)).as(e.payload()).isEmpty();
      assertThat(e.eventId()).isEqualTo(org.civicsync.server.events.DomainEvents.eventId(device.tenantId(), e.seq()));
      assertThat(json.get("eventId").asText()).isEqualTo(e.eventId().toString());
      assertThat(json.get("recordId").asText()).isEqualTo(id.toString());
      assertThat(json.get("deviceId").asText()).isEqualTo(device.deviceId().toString());
    }
    assertThat(org.civicsync.core.json.Json.mapper().readTree(events.get(1).payload()).at("/data/status").asText()).isEqualTo("checked_in");
    assertThat(events.get(0).seq()).isLessThan(events.get(1).seq());
  }

  @Test
  void publishedEventsLeaveTheBacklogAndFailedAttemptsAreCounted() {
    PushService withEvents = new PushService(org.civicsync.server.audit.AuditedStore.wrap(store, catalog, Clock.systemUTC())
        .withDomainEvents(true), catalog, Clock.systemUTC());
    withEvents.push(device, TestDevices.signed(device, List.of(fx.create(fx.uuid()), fx.create(fx.uuid()))));
    List<org.civicsync.server.store.OutboxEvent> events = outbox();
    assertThat(events).hasSize(2);
    assertThat(store.eventBacklog().pending()).isGreaterThanOrEqualTo(2);
    assertThat(store.eventBacklog().oldest()).isPresent();

    store.markPublishFailed(events, "nats: timeout");
    assertThat(outbox()).extracting(org.civicsync.server.store.OutboxEvent::attempts).containsExactly(1, 1);
    store.markPublished(events.subList(0, 1), java.time.Instant.now());
    assertThat(outbox()).extracting(org.civicsync.server.store.OutboxEvent::seq).containsExactly(events.get(1).seq());
    store.markPublished(events, java.time.Instant.now());
    assertThat(outbox()).isEmpty();
  }

  @Test
  void poolFiguresAreConsistentWhenTheStoreHasAPool() {
    push(fx.create(fx.uuid()));
    store.poolStats().ifPresent(p -> {
      assertThat(p.max()).isPositive();
      assertThat(p.total()).isBetween(0, p.max());
      assertThat(p.active() + p.idle()).isLessThanOrEqualTo(p.total());
      assertThat(p.waiting()).isNotNegative();
    });
  }

  @Test
  void oneHolderLeadsARoleAtATime() {
    String role = "relay-" + device.tenantId();
    Optional<ServerStore.Leadership> first = store.tryLead(role);
    assertThat(first).isPresent();
    assertThat(first.get().held()).isTrue();
    assertThat(store.tryLead(role)).as("taken").isEmpty();
    first.get().close();
    Optional<ServerStore.Leadership> second = store.tryLead(role);
    assertThat(second).as("free again").isPresent();
    second.get().close();
  }

  @Test
  void countsTellHowEachDevicesMutationsWereDecidedAndWhatWaitsNow() {
    java.time.Instant start = java.time.Instant.now().minusSeconds(60);
    UUID id = fx.uuid();
    parkPhoneConflict(id);
    assertThat(push(fx.update(id, 2, Fixtures.patch("status", "completed"))).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    MutationResult refused = push(fx.update(id, 3, Fixtures.patch("status", "booked"))).get(0);
    assertThat(refused.error().code()).isEqualTo("INVALID_TRANSITION");
    Mutation early = fx.update(id, 3, Fixtures.patch("patientName", "Later"));
    assertThat(push(withSeq(early, early.deviceSeq() + 5)).get(0).status()).isEqualTo(MutationStatus.HELD);

    org.civicsync.server.store.TenantCounts counts = store.counts(device.tenantId(), start);
    assertThat(counts.log()).extracting(c -> c.status() + "/" + c.errorCode().orElse("-") + "/" + c.resolution() + "=" + c.count())
        .containsExactlyInAnyOrder("applied/-/false=3", "conflict/VERSION_CONFLICT/false=1", "rejected/INVALID_TRANSITION/false=1");
    assertThat(counts.log()).allSatisfy(c -> assertThat(c.deviceId()).isEqualTo(device.deviceId()));
    assertThat(counts.held()).containsExactly(new org.civicsync.server.store.TenantCounts.HeldCount(device.deviceId(), 1));
    assertThat(counts.openInbox()).containsExactlyInAnyOrder(
        new org.civicsync.server.store.TenantCounts.InboxCount(Optional.of(device.deviceId()), "conflict", 1),
        new org.civicsync.server.store.TenantCounts.InboxCount(Optional.of(device.deviceId()), "rejected", 1));

    ServerStore.Waiting waiting = store.waiting();
    assertThat(waiting.heldMutations()).as("over every tenant, this one's included").isGreaterThanOrEqualTo(1);
    assertThat(waiting.openInboxItems()).isGreaterThanOrEqualTo(2);

    org.civicsync.server.store.TenantCounts later = store.counts(device.tenantId(), java.time.Instant.now().plusSeconds(3600));
    assertThat(later.log()).as("only mutations received since the given moment").isEmpty();
    assertThat(later.held()).as("what waits is counted whatever its age").hasSize(1);
    assertThat(store.counts(newTenant(), start).log()).as("another tenant's figures").isEmpty();

    java.time.LocalDate today = java.time.LocalDate.now(java.time.ZoneOffset.UTC);
    store.addTraffic(List.of(new org.civicsync.server.store.DeviceTraffic(device.tenantId(), device.deviceId(), today, 1200, 300),
        new org.civicsync.server.store.DeviceTraffic(device.tenantId(), device.deviceId(), today.minusDays(3), 5000, 5000)));
    store.addTraffic(List.of(new org.civicsync.server.store.DeviceTraffic(device.tenantId(), device.deviceId(), today, 800, 700)));
    assertThat(store.counts(device.tenantId(), start).traffic()).as("added up, from the asked day on")
        .containsExactly(new org.civicsync.server.store.TenantCounts.TrafficCount(device.deviceId(), 2000, 1000));
    assertThat(store.counts(device.tenantId(), start.minus(java.time.Duration.ofDays(7))).traffic())
        .containsExactly(new org.civicsync.server.store.TenantCounts.TrafficCount(device.deviceId(), 7000, 6000));
  }

  @Test
  void resolutionsAreCountedApartUnderTheResolvingDevice() {
    java.time.Instant start = java.time.Instant.now().minusSeconds(60);
    MutationResult parked = parkPhoneConflict(fx.uuid());
    inbox.resolve(device, parked.conflictId(), new ResolveRequest("keepServer", null, null), Optional.empty());
    org.civicsync.server.store.TenantCounts counts = store.counts(device.tenantId(), start);
    assertThat(counts.log()).filteredOn(org.civicsync.server.store.TenantCounts.LogCount::resolution)
        .singleElement().satisfies(c -> {
          assertThat(c.deviceId()).isEqualTo(device.deviceId());
          assertThat(c.count()).isEqualTo(1);
        });
    assertThat(counts.openInbox()).as("the resolved conflict no longer waits").isEmpty();
  }

  @Test
  void takingTheClientsSideWritesANewVersionAndTheDeviceLearnsTheOutcome() {
    UUID id = fx.uuid();
    MutationResult parked = parkPhoneConflict(id);
    ResolveResponse r = inbox.resolve(device, parked.conflictId(), new ResolveRequest("takeClient", null, "patient confirmed new number"),
        Optional.empty());
    assertThat(r.item().status()).isEqualTo("resolved");
    assertThat(r.item().resolution().path("comment").asText()).isEqualTo("patient confirmed new number");
    assertThat(r.record().version()).isEqualTo(3);
    assertThat(r.record().data().path("patientPhone").asText()).isEqualTo("+94770000002");
    assertThat(pullAll(device, Set.of()).get(0).version()).as("flows to every device through pull").isEqualTo(3);
    List<org.civicsync.server.store.LoggedMutation> log = new ArrayList<>();
    store.write(device.tenantId(), tx -> {
      tx.forEachLogged(log::add);
      return null;
    });
    assertThat(log.get(log.size() - 1)).as("the event log records who resolved it, how and why").satisfies(e -> {
      assertThat(e.deviceId()).isEqualTo(device.deviceId());
      assertThat(e.note().path("resolution").asText()).isEqualTo("takeClient");
      assertThat(e.note().path("comment").asText()).isEqualTo("patient confirmed new number");
      assertThat(e.note().path("inboxItem").asText()).isEqualTo(parked.conflictId().toString());
    });
    assertThat(log.get(0).note()).as("a device's own mutation carries no note").isNull();
    OutcomesResponse outcomes = pull.outcomes(device, Optional.empty(), Optional.empty());
    assertThat(outcomes.outcomes()).singleElement().satisfies(o -> {
      assertThat(o.mutationId()).isEqualTo(parked.mutationId());
      assertThat(o.status()).isEqualTo(MutationStatus.MERGED);
      assertThat(o.resolution()).isEqualTo("takeClient");
      assertThat(o.record().version()).isEqualTo(3);
    });
    assertThat(pull.outcomes(device, Optional.of(outcomes.cursor()), Optional.empty()).outcomes()).isEmpty();
    MutationResult replay = push.push(device, TestDevices.signed(device, List.of(storedMutation(parked.mutationId())))).results().get(0);
    assertThat(replay.status()).as("a replay now answers with the final outcome").isEqualTo(MutationStatus.MERGED);
    assertThat(replay.replayed()).isTrue();
  }

  @Test
  void keepingTheServersSideReportsTheDroppedFieldsToTheDevice() {
    UUID id = fx.uuid();
    MutationResult parked = parkPhoneConflict(id);
    ResolveResponse r = inbox.resolve(device, parked.conflictId(), new ResolveRequest("keepServer", null, null), Optional.empty());
    assertThat(r.record().data().path("patientPhone").asText()).isEqualTo("+94770000001");
    assertThat(pull.outcomes(device, Optional.empty(), Optional.empty()).outcomes()).singleElement()
        .satisfies(o -> assertThat(o.overriddenFields()).containsExactly("patientPhone"));
  }

  @Test
  void anEditThatBreaksTheSchemaIsRefusedAndTheItemStaysOpen() {
    UUID id = fx.uuid();
    MutationResult parked = parkPhoneConflict(id);
    ObjectNode bad = Json.mapper().createObjectNode().put("patientName", "x");
    assertThatThrownBy(() -> inbox.resolve(device, parked.conflictId(), new ResolveRequest("edit", bad, null), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.RESOLUTION_REJECTED));
    assertThat(store.inbox(device.tenantId(), Optional.of("open"), Optional.of("conflict"), Optional.empty(), 10)).hasSize(1);
    ObjectNode good = pullAll(device, Set.of()).get(0).data().deepCopy().put("patientPhone", "+94770000009");
    assertThat(inbox.resolve(device, parked.conflictId(), new ResolveRequest("edit", good, null), Optional.empty())
        .record().data().path("patientPhone").asText()).isEqualTo("+94770000009");
  }

  @Test
  void resolvingAgainWithTheSameKeyAnswersTheSameAndWithoutItIsRefused() {
    UUID id = fx.uuid();
    MutationResult parked = parkPhoneConflict(id);
    ResolveRequest take = new ResolveRequest("takeClient", null, null);
    ResolveResponse first = inbox.resolve(device, parked.conflictId(), take, Optional.of("key-1"));
    ResolveResponse again = inbox.resolve(device, parked.conflictId(), take, Optional.of("key-1"));
    assertThat(org.civicsync.core.canonical.Jcs.canonicalString(Json.mapper().valueToTree(again)))
        .isEqualTo(org.civicsync.core.canonical.Jcs.canonicalString(Json.mapper().valueToTree(first)));
    assertThat(pullAll(device, Set.of()).get(0).version()).as("applied once").isEqualTo(3);
    assertThatThrownBy(() -> inbox.resolve(device, parked.conflictId(), take, Optional.of("key-2")))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INBOX_ITEM_RESOLVED));
    assertThatThrownBy(() -> inbox.resolve(device, UUID.randomUUID(), take, Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INBOX_ITEM_NOT_FOUND));
    Caller.Device stranger = newDevice(newTenant());
    assertThatThrownBy(() -> inbox.resolve(stranger, parked.conflictId(), take, Optional.empty()))
        .as("another tenant's item does not exist for this caller")
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INBOX_ITEM_NOT_FOUND));
  }

  @Test
  void aRejectedBookingAppearsInTheInboxAndCanBeTakenOnceTheSlotIsFree() {
    ObjectNode slot = fx.appointment();
    UUID first = fx.uuid();
    push(fx.create(first, slot.deepCopy()));
    Mutation late = fx.create(fx.uuid(), slot.deepCopy().put("patientName", "Second Patient"));
    assertThat(push(late).get(0).error().code()).isEqualTo("CAPACITY_EXCEEDED");
    InboxItemView item = inbox.list(device, Optional.of("open"), Optional.of("rejected"), Optional.empty(), Optional.empty())
        .items().get(0);
    assertThat(item.mutationId()).isEqualTo(late.mutationId());
    assertThat(item.detail().at("/error/code").asText()).isEqualTo("CAPACITY_EXCEEDED");
    assertThatThrownBy(() -> inbox.resolve(device, item.id(), new ResolveRequest("takeClient", null, null), Optional.empty()))
        .as("still full").isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.RESOLUTION_REJECTED));
    push(fx.update(first, 1, Fixtures.patch("status", "cancelled")));
    ResolveResponse r = inbox.resolve(device, item.id(), new ResolveRequest("takeClient", null, "first patient cancelled"), Optional.empty());
    assertThat(r.record().data().path("patientName").asText()).isEqualTo("Second Patient");
    assertThat(r.record().version()).isEqualTo(1);
  }

  @Test
  void aResolutionStillKeepsTheFieldKinds() {
    UUID id = fx.uuid();
    MutationResult parked = parkPhoneConflict(id);
    push(fx.update(id, 2, Fixtures.patch("status", "checked_in")));
    ObjectNode backwards = pullAll(device, Set.of()).get(0).data().deepCopy().put("status", "booked");
    backwards.putArray("notes");
    assertThatThrownBy(() -> inbox.resolve(device, parked.conflictId(), new ResolveRequest("edit", backwards, null), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESOLUTION_REJECTED);
          assertThat(e.getMessage()).startsWith("INVALID_TRANSITION");
        });
    ObjectNode dropsNotes = pullAll(device, Set.of()).get(0).data().deepCopy();
    dropsNotes.putArray("notes").add("seen by supervisor");
    ResolveResponse r = inbox.resolve(device, parked.conflictId(), new ResolveRequest("edit", dropsNotes, null), Optional.empty());
    assertThat(r.record().data().get("notes")).as("nothing leaves an append-only array").hasSize(2);
  }

  @Test
  void dismissingARejectionTellsTheDeviceItStands() {
    ObjectNode slot = fx.appointment();
    push(fx.create(fx.uuid(), slot.deepCopy()));
    Mutation late = fx.create(fx.uuid(), slot.deepCopy());
    push(late);
    InboxItemView item = inbox.list(device, Optional.of("open"), Optional.of("rejected"), Optional.empty(), Optional.empty()).items().get(0);
    ResolveResponse r = inbox.resolve(device, item.id(), new ResolveRequest("keepServer", null, "slot was taken"), Optional.empty());
    assertThat(r.record()).isNull();
    assertThat(pull.outcomes(device, Optional.empty(), Optional.empty()).outcomes()).singleElement().satisfies(o -> {
      assertThat(o.status()).isEqualTo(MutationStatus.REJECTED);
      assertThat(o.resolution()).isEqualTo("keepServer");
      assertThat(o.error().code()).isEqualTo("CAPACITY_EXCEEDED");
    });
  }

  // ---------------------------------------------------------------- per-device order and the hold queue

  /** A mutation of the fixture's device renumbered (to send it out of order). */
  private static Mutation withSeq(Mutation m, long deviceSeq) {
    return new Mutation(m.mutationId(), deviceSeq, m.collection(), m.recordId(), m.op(), m.baseVersion(), m.data(), m.hlc(), m.clientTime());
  }

  @Test
  void aMutationArrivingBeforeItsPredecessorIsHeldThenAppliedInOrder() {
    UUID id = fx.uuid();
    Mutation create = withSeq(fx.create(id), 1);
    Mutation update = withSeq(fx.update(id, 1, Fixtures.patch("status", "checked_in")), 2);
    MutationResult held = push(update).get(0);
    assertThat(held.status()).isEqualTo(MutationStatus.HELD);
    assertThat(held.waitingFor()).isEqualTo(1);
    assertThat(pullAll(device, Set.of())).isEmpty();
    assertThat(push(update).get(0)).as("sent again while held").satisfies(r -> {
      assertThat(r.status()).isEqualTo(MutationStatus.HELD);
      assertThat(r.replayed()).isTrue();
    });
    assertThat(push(create).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(pullAll(device, Set.of())).singleElement().satisfies(c -> {
      assertThat(c.version()).as("the held update applied right after").isEqualTo(2);
      assertThat(c.data().path("status").asText()).isEqualTo("checked_in");
    });
    assertThat(pull.outcomes(device, Optional.empty(), Optional.empty()).outcomes()).singleElement().satisfies(o -> {
      assertThat(o.mutationId()).isEqualTo(update.mutationId());
      assertThat(o.status()).isEqualTo(MutationStatus.APPLIED);
      assertThat(o.version()).isEqualTo(2);
    });
    assertThat(push(update).get(0)).as("its final result is what a replay returns").satisfies(r -> {
      assertThat(r.status()).isEqualTo(MutationStatus.APPLIED);
      assertThat(r.replayed()).isTrue();
    });
  }

  @Test
  void mutationsOfOnePushApplyInDeviceSeqOrderAndAnswerInRequestOrder() {
    UUID id = fx.uuid();
    Mutation create = withSeq(fx.create(id), 1);
    Mutation update = withSeq(fx.update(id, 1, Fixtures.patch("status", "checked_in")), 2);
    List<MutationResult> rs = push(update, create);
    assertThat(rs.get(0).version()).isEqualTo(2);
    assertThat(rs.get(1).version()).isEqualTo(1);
  }

  @Test
  void aRejectedPredecessorDoesNotBlockItsSuccessors() {
    ObjectNode bad = fx.appointment();
    bad.remove("clinicId");
    Mutation rejected = withSeq(fx.create(fx.uuid(), bad), 1);
    Mutation next = withSeq(fx.create(fx.uuid()), 2);
    assertThat(push(next).get(0).status()).isEqualTo(MutationStatus.HELD);
    assertThat(push(rejected).get(0).status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(pullAll(device, Set.of())).extracting(Change::recordId).containsExactly(next.recordId());
  }

  @Test
  void aHeldMutationSentAgainWithOtherContentIsRefused() {
    UUID id = fx.uuid();
    Mutation update = withSeq(fx.update(id, 1, Fixtures.patch("status", "checked_in")), 5);
    push(update);
    Mutation forged = new Mutation(update.mutationId(), 5, update.collection(), id, update.op(), 1, Fixtures.patch("status", "cancelled"),
        update.hlc(), update.clientTime());
    assertThat(push(forged).get(0).error().code()).isEqualTo("MUTATION_ID_REUSED");
  }

  @Test
  void aHoldPastItsWindowIsForcedThroughAndFlaggedInTheInbox() {
    FakeClock clock = new FakeClock(Instant.now());
    PushService timed = new PushService(store, catalog, clock, java.time.Duration.ofHours(24), List.of(), java.time.Duration.ofDays(5));
    Mutation third = withSeq(fx.create(fx.uuid()), 3);
    assertThat(timed.push(device, TestDevices.signed(device, List.of(third))).results().get(0).status()).isEqualTo(MutationStatus.HELD);
    assertThat(store.devicesWithHoldsBefore(clock.instant().plusSeconds(1)))
        .contains(new org.civicsync.server.store.DeviceKey(device.tenantId(), device.deviceId()));
    assertThat(timed.releaseExpired(new org.civicsync.server.store.DeviceKey(device.tenantId(), device.deviceId()), device.access()))
        .as("not yet expired").isZero();
    clock.advance(java.time.Duration.ofDays(5).plusMinutes(1));
    assertThat(timed.releaseExpired(new org.civicsync.server.store.DeviceKey(device.tenantId(), device.deviceId()), device.access())).isEqualTo(1);
    assertThat(pullAll(device, Set.of())).extracting(Change::recordId).containsExactly(third.recordId());
    assertThat(store.inbox(device.tenantId(), Optional.of("open"), Optional.of("forced"), Optional.empty(), 10)).singleElement()
        .satisfies(i -> {
          assertThat(i.mutationId()).isEqualTo(third.mutationId());
          assertThat(i.detail().path("missingFrom").asLong()).isEqualTo(1);
          assertThat(i.detail().path("missingTo").asLong()).isEqualTo(2);
        });
    assertThat(pull.outcomes(device, Optional.empty(), Optional.empty()).outcomes()).extracting(MutationResult::mutationId)
        .containsExactly(third.mutationId());
    Mutation first = withSeq(fx.create(fx.uuid()), 1);
    assertThat(push(first).get(0).status()).as("a late predecessor still applies").isEqualTo(MutationStatus.APPLIED);
  }

  // ---------------------------------------------------------------- idempotency

  @Test
  void replayOfAnAppliedMutationReturnsTheFirstResultAndChangesNothing() {
    UUID id = fx.uuid();
    Mutation create = fx.create(id);
    MutationResult first = push(create).get(0);
    long head = store.head(device.tenantId());
    MutationResult again = push(create).get(0);
    assertThat(again.replayed()).isTrue();
    assertThat(again.asReplay()).isEqualTo(first.asReplay());
    assertThat(store.head(device.tenantId())).isEqualTo(head);
    assertThat(pullAll(device, Set.of())).hasSize(1);
  }

  @Test
  void replayIsRecognisedWhateverTheJsonSpacingOrMemberOrder() throws Exception {
    Mutation create = fx.create(fx.uuid());
    push(create);
    ObjectNode reordered = Json.mapper().createObjectNode();
    ObjectNode data = create.data();
    List<String> names = new ArrayList<>();
    data.fieldNames().forEachRemaining(names::add);
    Collections.reverse(names);
    names.forEach(n -> reordered.set(n, data.get(n)));
    Mutation same = new Mutation(create.mutationId(), create.deviceSeq(), create.collection(), create.recordId(),
        create.op(), create.baseVersion(), reordered, create.hlc(), create.clientTime());
    assertThat(push(same).get(0).replayed()).isTrue();
  }

  @Test
  void replayOfAConflictReturnsTheSameOutcomeEvenAfterTheRecordChanged() {
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    Mutation stale = fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000002"));
    MutationResult first = push(stale).get(0);
    push(fx.update(id, 2, Fixtures.patch("patientPhone", "+94770000003")));
    MutationResult again = push(stale).get(0);
    assertThat(again.status()).isEqualTo(MutationStatus.CONFLICT);
    assertThat(again.serverRecord()).isEqualTo(first.serverRecord());
    assertThat(again.conflictId()).isEqualTo(first.conflictId());
    assertThat(again.replayed()).isTrue();
    assertThat(store.inbox(device.tenantId(), Optional.empty(), Optional.empty(), Optional.empty(), 10)).hasSize(1);
  }

  @Test
  void sameMutationIdWithOtherContentIsRejectedAsReusedAndTheFirstStands() {
    UUID id = fx.uuid();
    Mutation create = fx.create(id);
    push(create);
    ObjectNode other = fx.appointment();
    Mutation forged = new Mutation(create.mutationId(), create.deviceSeq(), "appointments", id, MutationOp.CREATE, 0, other, create.hlc(), create.clientTime());
    MutationResult r = push(forged).get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(r.error().code()).isEqualTo("MUTATION_ID_REUSED");
    ObjectNode expected = create.data().deepCopy().put("status", "booked");
    assertThat(pullAll(device, Set.of())).singleElement().satisfies(c -> assertThat(c.data()).isEqualTo(expected));
    assertThat(push(create).get(0).replayed()).as("the first content still replays").isTrue();
  }

  @Test
  void duplicateWithinOnePushIsAReplayOfItsFirstCopy() {
    Mutation create = fx.create(fx.uuid());
    List<MutationResult> rs = push(create, create);
    assertThat(rs.get(0).replayed()).isNull();
    assertThat(rs.get(1).replayed()).isTrue();
    assertThat(rs.get(1).version()).isEqualTo(1);
    assertThat(pullAll(device, Set.of())).hasSize(1);
  }

  @Test
  void concurrentDuplicatePushesApplyEachMutationExactlyOnce() throws Exception {
    List<Mutation> batch = new ArrayList<>();
    for (int i = 0; i < 50; i++) {
      batch.add(fx.create(fx.uuid()));
    }
    int senders = 6;
    ExecutorService pool = Executors.newFixedThreadPool(senders);
    CountDownLatch go = new CountDownLatch(1);
    List<Future<PushResponse>> fs = new ArrayList<>();
    for (int i = 0; i < senders; i++) {
      fs.add(pool.submit(() -> {
        go.await();
        return push.push(device, TestDevices.signed(device, batch));
      }));
    }
    go.countDown();
    int fresh = 0;
    for (Future<PushResponse> f : fs) {
      for (MutationResult r : f.get(60, TimeUnit.SECONDS).results()) {
        assertThat(r.status()).isEqualTo(MutationStatus.APPLIED);
        assertThat(r.version()).isEqualTo(1);
        if (r.replayed() == null) {
          fresh++;
        }
      }
    }
    pool.shutdown();
    assertThat(fresh).as("each mutation applied by exactly one of the duplicate pushes").isEqualTo(50);
    assertThat(store.head(device.tenantId())).isEqualTo(50);
    assertThat(pullAll(device, Set.of())).hasSize(50);
  }

  // ---------------------------------------------------------------- the feed

  @Test
  void feedPagesWalkEveryRecordOnceInCommitOrderAtItsLatestState() {
    List<UUID> ids = new ArrayList<>();
    for (int i = 0; i < 25; i++) {
      UUID id = fx.uuid();
      ids.add(id);
      push(fx.create(id));
    }
    push(fx.update(ids.get(3), 1, Fixtures.patch("status", "checked_in")));
    push(fx.delete(ids.get(7), 1));
    List<Change> all = new ArrayList<>();
    Optional<String> cursor = Optional.empty();
    Cursor last = null;
    int pages = 0;
    while (true) {
      PullResponse page = pull.pull(device, cursor, Optional.of("4"), Optional.empty());
      pages++;
      assertThat(page.changes().size()).isLessThanOrEqualTo(4);
      Cursor c = Cursor.decode(page.cursor(), device.tenantId(), Set.of());
      if (last != null) {
        assertThat(c).isGreaterThanOrEqualTo(last);
      }
      last = c;
      all.addAll(page.changes());
      cursor = Optional.of(page.cursor());
      if (!page.hasMore()) {
        break;
      }
    }
    assertThat(pages).isEqualTo(7);
    assertThat(all).extracting(Change::recordId).doesNotHaveDuplicates().hasSize(25);
    List<UUID> expectedOrder = new ArrayList<>(ids);
    expectedOrder.remove(ids.get(3));
    expectedOrder.remove(ids.get(7));
    expectedOrder.add(ids.get(3));
    expectedOrder.add(ids.get(7));
    assertThat(all).extracting(Change::recordId).containsExactlyElementsOf(expectedOrder);
    assertThat(all.get(23).version()).isEqualTo(2);
    assertThat(all.get(24).op()).isEqualTo(ChangeOp.DELETE);
    PullResponse empty = pull.pull(device, cursor, Optional.empty(), Optional.empty());
    assertThat(empty.changes()).isEmpty();
    assertThat(empty.hasMore()).isFalse();
    assertThat(Cursor.decode(empty.cursor(), device.tenantId(), Set.of())).isEqualTo(last);
  }

  @Test
  void laterChangeOfAnAlreadyPulledRecordArrivesAfterTheCursor() {
    UUID id = fx.uuid();
    push(fx.create(id));
    PullResponse first = pull.pull(device, Optional.empty(), Optional.empty(), Optional.empty());
    push(fx.update(id, 1, Fixtures.patch("status", "checked_in")));
    PullResponse next = pull.pull(device, Optional.of(first.cursor()), Optional.empty(), Optional.empty());
    assertThat(next.changes()).singleElement().satisfies(c -> assertThat(c.version()).isEqualTo(2));
  }

  @Test
  void pagingWhileOthersWriteMissesNothingAndRepeatsNothing() {
    // After each page with more behind it the next one is read ahead, before this test's writes
    // between the pages: every change must still arrive once, in seq order, on the next pulls.
    java.util.Map<UUID, Long> expected = new java.util.HashMap<>();
    for (int i = 0; i < 12; i++) {
      UUID id = fx.uuid();
      push(fx.create(id));
      expected.put(id, 1L);
    }
    List<UUID> ids = new ArrayList<>(expected.keySet());
    java.util.Map<UUID, Long> seen = new java.util.HashMap<>();
    Optional<String> cursor = Optional.empty();
    int pages = 0;
    while (true) {
      PullResponse page = pull.pull(device, cursor, Optional.of("3"), Optional.empty());
      for (Change c : page.changes()) {
        assertThat(seen.getOrDefault(c.recordId(), 0L)).as("versions of %s arrive in order", c.recordId()).isLessThan(c.version());
        seen.put(c.recordId(), c.version());
      }
      cursor = Optional.of(page.cursor());
      if (pages < 4) {
        UUID id = ids.get(pages);
        long v = expected.get(id);
        push(fx.update(id, v, Fixtures.patch("patientPhone", "+9477000000" + pages)));
        expected.put(id, v + 1);
        UUID fresh = fx.uuid();
        push(fx.create(fresh));
        expected.put(fresh, 1L);
      }
      pages++;
      if (!page.hasMore() && pages > 4) {
        break;
      }
      assertThat(pages).isLessThan(100);
    }
    assertThat(seen).isEqualTo(expected);
  }

  @Test
  void collectionsFilterNarrowsTheFeedAndBindsTheCursor() {
    push(fx.create(fx.uuid()));
    ObjectNode claim = Json.mapper().createObjectNode().put("farmerId", "F-1").put("crop", "paddy").put("season", "maha-2026");
    Mutation m = fx.mutation("subsidy_claims", fx.uuid(), MutationOp.CREATE, 0, claim);
    assertThat(push(m).get(0).status()).isEqualTo(MutationStatus.APPLIED);
    PullResponse claims = pull.pull(device, Optional.empty(), Optional.empty(), Optional.of("subsidy_claims"));
    assertThat(claims.changes()).extracting(Change::collection).containsExactly("subsidy_claims");
    assertThatThrownBy(() -> pull.pull(device, Optional.of(claims.cursor()), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CURSOR_INVALID));
    assertThatThrownBy(() -> pull.pull(device, Optional.empty(), Optional.empty(), Optional.of("land_parcels")))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_REQUEST));
  }

  @Test
  void badCursorsAndLimitsAreRefused() {
    for (String bad : List.of("not-a-cursor", "djEuOTk5OTkuYWJj", "!!")) {
      assertThatThrownBy(() -> pull.pull(device, Optional.of(bad), Optional.empty(), Optional.empty()))
          .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CURSOR_INVALID));
    }
    for (String bad : List.of("0", "5001", "-1", "ten", "1e3")) {
      assertThatThrownBy(() -> pull.pull(device, Optional.empty(), Optional.of(bad), Optional.empty()))
          .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.LIMIT_OUT_OF_RANGE));
    }
  }

  @Test
  void cursorAheadOfTheServerIsRefused() {
    push(fx.create(fx.uuid()));
    String ahead = Cursor.start(device.tenantId(), Set.of()).at(1_000).encode();
    assertThatThrownBy(() -> pull.pull(device, Optional.of(ahead), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CURSOR_INVALID));
  }

  // ---------------------------------------------------------------- tenancy

  @Test
  void tenantsSeeOnlyTheirOwnRecordsAndMutationIdsAreKeyedPerTenant() {
    Caller.Device other = newDevice(newTenant());
    Mutation create = fx.create(fx.uuid());
    push(create);
    assertThat(pullAll(other, Set.of())).isEmpty();
    MutationResult inOther = push.push(other, TestDevices.signed(other, List.of(create))).results().get(0);
    assertThat(inOther.status()).isEqualTo(MutationStatus.APPLIED);
    assertThat(inOther.replayed()).as("same mutationId in another tenant is a new mutation").isNull();
    assertThat(pullAll(other, Set.of())).hasSize(1);
    assertThat(pullAll(device, Set.of())).hasSize(1);
    String otherCursor = pull.pull(other, Optional.empty(), Optional.empty(), Optional.empty()).cursor();
    assertThatThrownBy(() -> pull.pull(device, Optional.of(otherCursor), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.CURSOR_INVALID));
  }

  @Test
  void enrollmentCodeIsUsableOnlyUpToMaxUsesAndUntilItExpires() throws Exception {
    String tenant = newTenant();
    tenancy.putUser(tenant, "team-lead", new org.civicsync.contracts.UserRequest("team-lead", List.of("fieldWorker"), List.of()), true);
    EnrollmentCode code = tenancy.issueEnrollmentCode(tenant, new EnrollmentCodeRequest("team-lead", "team", 1, 3));
    int senders = 8;
    ExecutorService pool = Executors.newFixedThreadPool(senders);
    AtomicInteger ok = new AtomicInteger();
    List<Future<?>> fs = new ArrayList<>();
    for (int i = 0; i < senders; i++) {
      fs.add(pool.submit(() -> {
        try {
          tenancy.enroll(new EnrollRequest(code.code().toLowerCase(java.util.Locale.ROOT), "tablet",
              org.civicsync.core.signing.Ed25519.generate().publicKey().encoded()));
          ok.incrementAndGet();
        } catch (ApiException e) {
          assertThat(e.code()).isEqualTo(ErrorCode.ENROLLMENT_CODE_INVALID);
        }
      }));
    }
    for (Future<?> f : fs) {
      f.get(30, TimeUnit.SECONDS);
    }
    pool.shutdown();
    assertThat(ok.get()).isEqualTo(3);
    TenancyService later = new TenancyService(store, Clock.fixed(Instant.now().plusSeconds(7200), java.time.ZoneOffset.UTC));
    EnrollmentCode fresh = tenancy.issueEnrollmentCode(tenant, new EnrollmentCodeRequest("team-lead", null, 1, 5));
    assertThatThrownBy(() -> later.enroll(new EnrollRequest(fresh.code(), "late tablet",
        org.civicsync.core.signing.Ed25519.generate().publicKey().encoded())))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.ENROLLMENT_CODE_INVALID));
  }

  @Test
  void tokensAuthenticateTheirDeviceAndPushAndPullTimesAreRecorded() {
    String tenant = newTenant();
    tenancy.putUser(tenant, "u1", new org.civicsync.contracts.UserRequest("u1", List.of("admin"), List.of()), true);
    org.civicsync.core.signing.Ed25519.KeyPair keys = org.civicsync.core.signing.Ed25519.generate();
    EnrollResponse e = tenancy.enroll(new EnrollRequest(tenancy.issueEnrollmentCode(tenant, new EnrollmentCodeRequest("u1", null, null, null)).code(),
        "t", keys.publicKey().encoded()));
    TestDevices.remember(e.deviceId(), keys);
    Caller.Device d = (Caller.Device) tenancy.authenticate(Optional.of(e.token()));
    assertThat(d.row().lastPushAt()).isNull();
    push.push(d, TestDevices.signed(d, List.of(fx.create(fx.uuid()))));
    pull.pull(d, Optional.empty(), Optional.empty(), Optional.empty());
    Caller.Device again = (Caller.Device) tenancy.authenticate(Optional.of(e.token()));
    assertThat(again.row().lastPushAt()).isNotNull();
    assertThat(again.row().lastPullAt()).isNotNull();
    assertThatThrownBy(() -> tenancy.authenticate(Optional.of(e.token() + "x")))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.UNAUTHENTICATED));
  }

  @Test
  void creatingATenantTwiceIsRefused() {
    String t = newTenant();
    assertThatThrownBy(() -> tenancy.createTenant(new CreateTenantRequest(t)))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.TENANT_EXISTS));
  }

  // ---------------------------------------------------------------- atomicity and rebuilds

  @Test
  void aWriteTransactionThatFailsLeavesNothingBehind() {
    push(fx.create(fx.uuid()));
    long head = store.head(device.tenantId());
    Mutation m = fx.create(fx.uuid());
    assertThatThrownBy(() -> store.write(device.tenantId(), tx -> {
      tx.appendLog(List.of(new org.civicsync.server.store.LoggedMutation(head + 1, m, "x", device.deviceId(),
          MutationResult.applied(m.mutationId(), m.recordId(), 1), Instant.now(), null)));
      tx.putRecords(List.of(new StoredRecord("appointments", m.recordId(), 1, false, m.data(), head + 1, Instant.now(), java.util.Map.of(), null)));
      tx.advanceHead(head + 1);
      throw new IllegalStateException("boom");
    })).hasMessage("boom");
    assertThat(store.head(device.tenantId())).isEqualTo(head);
    assertThat(pullAll(device, Set.of())).hasSize(1);
    assertThat(push(m).get(0).replayed()).as("the failed transaction did not occupy the mutationId").isNull();
  }

  /** Records are found by collection and id together: the same id in two collections is two records. */
  @Test
  void findingRecordsTellsTheSameIdInTwoCollectionsApart() {
    String tenant = newTenant();
    UUID id = fx.uuid();
    Instant at = Instant.parse("2026-03-01T08:00:00.123456Z");
    store.write(tenant, tx -> {
      tx.putRecords(List.of(
          new StoredRecord("clinics", id, 1, false, Json.mapper().createObjectNode().put("name", "Kandy"), 1, at, java.util.Map.of(), null),
          new StoredRecord("people", id, 3, false, Json.mapper().createObjectNode().put("name", "Asha"), 2, at, java.util.Map.of(), null)));
      tx.advanceHead(2);
      return null;
    });
    RecordKey clinic = new RecordKey("clinics", id);
    RecordKey person = new RecordKey("people", id);
    RecordKey none = new RecordKey("appointments", id);
    java.util.Map<RecordKey, StoredRecord> found = store.write(tenant, tx -> tx.findRecords(List.of(clinic, none, person)));
    assertThat(found).containsOnlyKeys(clinic, person);
    assertThat(found.get(clinic).data().path("name").asText()).isEqualTo("Kandy");
    assertThat(found.get(person).version()).isEqualTo(3);
    assertThat(found.get(person).data().path("name").asText()).isEqualTo("Asha");
  }

  @Test
  void rebuildingTheProjectionFromTheLogReproducesItExactly() {
    List<UUID> ids = new ArrayList<>();
    for (int i = 0; i < 30; i++) {
      ids.add(fx.uuid());
      push(fx.create(ids.get(i)));
    }
    for (int i = 0; i < 10; i++) {
      push(fx.update(ids.get(i), 1, Fixtures.patch("status", "checked_in")));
    }
    push(fx.delete(ids.get(20), 1));
    push(fx.update(ids.get(21), 7, Fixtures.patch("status", "completed")));
    push(fx.update(ids.get(22), 1, Fixtures.patch("patientPhone", "+94770000001")));
    push(fx.update(ids.get(22), 1, Fixtures.patch("clinicId", "clinic-merged")));
    PullPage before = store.pull(device.tenantId(), org.civicsync.server.store.PullQuery.all(0, 5000, Set.of()));
    int n = new ProjectionRebuilder(store, catalog).rebuild(device.tenantId());
    PullPage after = store.pull(device.tenantId(), org.civicsync.server.store.PullQuery.all(0, 5000, Set.of()));
    assertThat(n).isEqualTo(30);
    assertThat(after.records()).usingRecursiveFieldByFieldElementComparator().containsExactlyElementsOf(before.records());
  }

  // ---------------------------------------------------------------- gap-free under concurrency

  /**
   * 8 writers push 1,000 mutations each (creates, then updates of their own records) while 4
   * readers pull with their own cursors. Every reader must end with every record at its final
   * version, must see each record's versions only increasing, never see a change twice, and never
   * have its cursor move backwards.
   */
  @Test
  void changeFeedHasNoGapsUnderConcurrentWritersAndReaders() throws Exception {
    long seed = System.nanoTime();
    try {
      runGapFree(seed);
    } catch (AssertionError | Exception e) {
      throw new AssertionError("gap-free test failed with seed " + seed + ": " + e.getMessage(), e);
    }
  }

  private void runGapFree(long seed) throws Exception {
    int writers = 8;
    int perWriter = 1000;
    int readers = 4;
    ExecutorService pool = Executors.newFixedThreadPool(writers + readers);
    AtomicBoolean writing = new AtomicBoolean(true);
    CountDownLatch start = new CountDownLatch(1);
    Map<UUID, Long> finalVersion = new ConcurrentHashMap<>();
    List<Future<?>> ws = new ArrayList<>();
    for (int w = 0; w < writers; w++) {
      Fixtures f = new Fixtures(seed + w);
      java.util.Random rnd = new java.util.Random(seed * 31 + w);
      ws.add(pool.submit(() -> {
        start.await();
        Caller.Device dev = newDevice(device.tenantId());
        List<UUID> mine = new ArrayList<>();
        Map<UUID, Long> versions = new HashMap<>();
        int sent = 0;
        while (sent < perWriter) {
          int size = Math.min(1 + rnd.nextInt(40), perWriter - sent);
          List<Mutation> batch = new ArrayList<>();
          Set<UUID> touched = new HashSet<>();
          for (int i = 0; i < size; i++) {
            if (mine.size() > 5 && rnd.nextInt(3) == 0) {
              UUID id = mine.get(rnd.nextInt(mine.size()));
              if (touched.add(id)) {
                batch.add(f.update(id, versions.get(id), Fixtures.patch("patientPhone", "+9477" + (1000000 + rnd.nextInt(8999999)))));
                continue;
              }
            }
            UUID id = f.uuid();
            touched.add(id);
            batch.add(f.create(id));
            mine.add(id);
          }
          List<MutationResult> rs = push.push(dev, TestDevices.signed(dev, batch)).results();
          for (MutationResult r : rs) {
            assertThat(r.status()).isEqualTo(MutationStatus.APPLIED);
            versions.put(r.recordId(), r.version());
          }
          sent += size;
        }
        finalVersion.putAll(versions);
        return null;
      }));
    }
    List<Future<Map<UUID, Long>>> rs = new ArrayList<>();
    for (int r = 0; r < readers; r++) {
      int limit = 50 + 100 * r;
      rs.add(pool.submit(() -> {
        start.await();
        Caller.Device dev = newDevice(device.tenantId());
        Map<UUID, Long> seen = new HashMap<>();
        Optional<String> cursor = Optional.empty();
        Cursor last = Cursor.start(dev.tenantId(), Set.of());
        boolean drained = false;
        while (true) {
          boolean writersDone = !writing.get();
          PullResponse page = pull.pull(dev, cursor, Optional.of(Integer.toString(limit)), Optional.empty());
          Cursor c = Cursor.decode(page.cursor(), dev.tenantId(), Set.of());
          assertThat(c).as("cursor never moves backwards").isGreaterThanOrEqualTo(last);
          last = c;
          cursor = Optional.of(page.cursor());
          for (Change ch : page.changes()) {
            Long prev = seen.put(ch.recordId(), ch.version());
            assertThat(prev == null || prev < ch.version())
                .as("record %s seen at version %s after %s", ch.recordId(), ch.version(), prev).isTrue();
          }
          if (!page.hasMore() && writersDone) {
            if (drained) {
              break;
            }
            drained = true;
          }
        }
        return seen;
      }));
    }
    start.countDown();
    for (Future<?> w : ws) {
      w.get(5, TimeUnit.MINUTES);
    }
    writing.set(false);
    for (Future<Map<UUID, Long>> r : rs) {
      assertThat(r.get(5, TimeUnit.MINUTES)).as("reader ends with every record at its final version").isEqualTo(finalVersion);
    }
    pool.shutdown();
    assertThat(finalVersion.size()).isGreaterThan(writers * perWriter / 2);
  }

  // ---------------------------------------------------------------- records read by back-office systems

  @Test
  void recordsCanBeFoundByIdAndListedByFieldValues() {
    ObjectNode a = fx.appointment().put("clinicId", "clinic-list").put("status", "booked");
    ObjectNode b = fx.appointment().put("clinicId", "clinic-list");
    ObjectNode c = fx.appointment().put("clinicId", "clinic-other");
    UUID ia = fx.uuid();
    UUID ib = fx.uuid();
    push(fx.create(ia, a), fx.create(ib, b), fx.create(fx.uuid(), c));
    push(fx.update(ib, 1, Fixtures.patch("status", "checked_in")));
    ObjectNode claim = Json.mapper().createObjectNode().put("farmerId", "F-1").put("crop", "tea").put("season", "yala-2026")
        .put("areaHectares", 2.5).put("amountRequested", 1200);
    push(fx.mutation("subsidy_claims", fx.uuid(), MutationOp.CREATE, 0, claim));
    String t = device.tenantId();
    assertThat(store.findRecord(t, new org.civicsync.server.store.RecordKey("appointments", ia))).get()
        .satisfies(r -> assertThat(r.data().path("clinicId").asText()).isEqualTo("clinic-list"));
    List<StoredRecord> clinic = store.listRecords(t, "appointments", java.util.Map.of("clinicId", "clinic-list"), Optional.empty(), 10);
    assertThat(clinic).extracting(StoredRecord::recordId).containsExactlyInAnyOrder(ia, ib);
    assertThat(clinic.get(0).recordId().toString()).isLessThan(clinic.get(1).recordId().toString());
    assertThat(store.listRecords(t, "appointments", java.util.Map.of("clinicId", "clinic-list", "status", "checked_in"), Optional.empty(), 10))
        .extracting(StoredRecord::recordId).containsExactly(ib);
    assertThat(store.listRecords(t, "appointments", java.util.Map.of("clinicId", "clinic-list"), Optional.of(clinic.get(0).recordId()), 10))
        .extracting(StoredRecord::recordId).containsExactly(clinic.get(1).recordId());
    assertThat(store.listRecords(t, "subsidy_claims", java.util.Map.of("amountRequested", "1200", "areaHectares", "2.5"), Optional.empty(), 10))
        .as("numbers compare as their JSON text").hasSize(1);
    push(fx.delete(ia, 1));
    assertThat(store.listRecords(t, "appointments", java.util.Map.of("clinicId", "clinic-list"), Optional.empty(), 10))
        .as("tombstones are not listed").extracting(StoredRecord::recordId).containsExactly(ib);
    assertThat(store.listRecords(newTenant(), "appointments", java.util.Map.of(), Optional.empty(), 10)).isEmpty();
    assertThat(store.listRecords(t, "appointments", java.util.Map.of("clinic'Id\" OR 1=1 --", "x"), Optional.empty(), 10)).isEmpty();
  }

  // ---------------------------------------------------------------- convergence

  /**
   * Devices edit shared records offline and sync in random order with lost answers, duplicates
   * and out-of-order deliveries, while a supervisor resolves inbox items; in the end every device
   * holds the server's state, every mutation has exactly one final outcome, and no applied change
   * is lost or applied twice. Two fixed seeds and one new each run; a failure names its seed.
   */
  @Test
  void devicesConvergeWithTheServerAfterRandomOfflineEditsAndFaultyDeliveries() {
    for (long seed : List.of(20261122L, 7L, System.nanoTime())) {
      List<Caller.Device> devices = new ArrayList<>();
      String tenant = newTenant();
      for (int i = 0; i < 5; i++) {
        devices.add(newDevice(tenant));
      }
      ConvergenceSimulation.Report r = ConvergenceSimulation.run(seed, store, catalog, push, pull, inbox, devices, 300);
      assertThat(r.conflicts()).as("seed %s exercised conflicts", seed).isPositive();
      assertThat(r.merged()).as("seed %s exercised merges", seed).isPositive();
    }
  }

  // ---------------------------------------------------------------- signatures, tokens, revocation

  @Test
  void pushWithAlteredSignatureIsRejectedAndOccupiesNothing() {
    Mutation m = TestDevices.sign(device, fx.create(fx.uuid()));
    ObjectNode changed = m.data().deepCopy();
    changed.put("patientName", "Someone Else");
    Mutation altered = new Mutation(m.mutationId(), m.deviceSeq(), m.collection(), m.recordId(), m.op(), m.baseVersion(), changed,
        m.hlc(), m.clientTime(), m.signature());
    MutationResult r = push.push(device, new PushRequest(List.of(altered))).results().get(0);
    assertThat(r.status()).isEqualTo(MutationStatus.REJECTED);
    assertThat(r.error().code()).isEqualTo(ErrorCode.BAD_SIGNATURE.name());
    assertThat(store.head(device.tenantId())).as("nothing recorded").isZero();
    assertThat(push.push(device, new PushRequest(List.of(m))).results().get(0).status())
        .as("the genuine mutation still has its mutationId and deviceSeq").isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void signatureOfAnotherDeviceOrTenantDoesNotVerify() {
    Caller.Device sibling = newDevice(device.tenantId());
    Caller.Device foreign = newDevice(newTenant());
    Mutation mine = TestDevices.sign(device, fx.create(fx.uuid()));
    assertThat(push.push(sibling, new PushRequest(List.of(mine))).results().get(0).error().code())
        .as("replayed from another device").isEqualTo(ErrorCode.BAD_SIGNATURE.name());
    assertThat(push.push(foreign, new PushRequest(List.of(mine))).results().get(0).error().code())
        .as("replayed into another tenant").isEqualTo(ErrorCode.BAD_SIGNATURE.name());
    Mutation forged = mine.withSignature(TestDevices.keys(sibling.deviceId()).privateKey().sign(
        org.civicsync.core.signing.Envelopes.mutationSigningInput(device.tenantId(), device.deviceId(), mine)));
    assertThat(push.push(device, new PushRequest(List.of(forged))).results().get(0).error().code())
        .as("signed with another key").isEqualTo(ErrorCode.BAD_SIGNATURE.name());
    assertThat(store.head(device.tenantId())).isZero();
    assertThat(push.push(device, new PushRequest(List.of(mine))).results().get(0).status()).isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void aBatchWithOneBadSignatureAppliesTheOthers() {
    Mutation a = TestDevices.sign(device, fx.create(fx.uuid()));
    Mutation b = TestDevices.sign(device, fx.create(fx.uuid())).withSignature(a.signature());
    Mutation c = TestDevices.sign(device, fx.create(fx.uuid()));
    List<MutationResult> rs = push.push(device, new PushRequest(List.of(a, b, c))).results();
    assertThat(rs).extracting(MutationResult::status)
        .containsExactly(MutationStatus.APPLIED, MutationStatus.REJECTED, MutationStatus.HELD);
    assertThat(rs.get(1).error().code()).isEqualTo(ErrorCode.BAD_SIGNATURE.name());
    assertThat(rs.get(2).waitingFor()).as("c waits for the deviceSeq the bad copy of b could not take").isEqualTo(b.deviceSeq());
  }

  @Test
  void expiredTokenIsRefusedUntilRenewedByKeyAndMutationsSignedOfflineStillApply() {
    FakeClock clock = new FakeClock(Instant.now());
    TenancyService timed = new TenancyService(store, clock, java.time.Duration.ofHours(24));
    String tenant = newTenant();
    timed.putUser(tenant, "nurse", new org.civicsync.contracts.UserRequest("nurse", List.of("admin"), List.of()), true);
    org.civicsync.core.signing.Ed25519.KeyPair keys = org.civicsync.core.signing.Ed25519.generate();
    EnrollResponse e = timed.enroll(new EnrollRequest(
        timed.issueEnrollmentCode(tenant, new EnrollmentCodeRequest("nurse", null, null, null)).code(), "tablet", keys.publicKey().encoded()));
    TestDevices.remember(e.deviceId(), keys);
    assertThat(e.expiresAt()).isEqualTo(clock.instant().plus(java.time.Duration.ofHours(24)));
    Caller.Device d = (Caller.Device) timed.authenticate(Optional.of(e.token()));
    Mutation offline = TestDevices.sign(d, fx.create(fx.uuid()));
    clock.advance(java.time.Duration.ofDays(21));
    assertThatThrownBy(() -> timed.authenticate(Optional.of(e.token())))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.TOKEN_EXPIRED));
    org.civicsync.contracts.Challenge ch = timed.challenge(new org.civicsync.contracts.ChallengeRequest(e.deviceId()));
    String sig = keys.privateKey().sign(org.civicsync.core.signing.Envelopes.tokenSigningInput(tenant, e.deviceId(), ch.challenge()));
    org.civicsync.contracts.Token t = timed.renewToken(new org.civicsync.contracts.TokenRequest(e.deviceId(), ch.challenge(), sig));
    assertThatThrownBy(() -> timed.renewToken(new org.civicsync.contracts.TokenRequest(e.deviceId(), ch.challenge(), sig)))
        .as("a challenge is single use")
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.CHALLENGE_INVALID));
    Caller.Device renewed = (Caller.Device) timed.authenticate(Optional.of(t.token()));
    assertThat(push.push(renewed, new PushRequest(List.of(offline))).results().get(0).status()).isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void challengeSignedWithAnotherKeyOrAfterItExpiredIsRefused() {
    FakeClock clock = new FakeClock(Instant.now());
    TenancyService timed = new TenancyService(store, clock);
    org.civicsync.contracts.Challenge ch = timed.challenge(new org.civicsync.contracts.ChallengeRequest(device.deviceId()));
    String wrong = org.civicsync.core.signing.Ed25519.generate().privateKey()
        .sign(org.civicsync.core.signing.Envelopes.tokenSigningInput(device.tenantId(), device.deviceId(), ch.challenge()));
    assertThatThrownBy(() -> timed.renewToken(new org.civicsync.contracts.TokenRequest(device.deviceId(), ch.challenge(), wrong)))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.CHALLENGE_INVALID));
    org.civicsync.contracts.Challenge late = timed.challenge(new org.civicsync.contracts.ChallengeRequest(device.deviceId()));
    clock.advance(TenancyService.CHALLENGE_TTL.plusSeconds(1));
    String right = TestDevices.keys(device.deviceId()).privateKey()
        .sign(org.civicsync.core.signing.Envelopes.tokenSigningInput(device.tenantId(), device.deviceId(), late.challenge()));
    assertThatThrownBy(() -> timed.renewToken(new org.civicsync.contracts.TokenRequest(device.deviceId(), late.challenge(), right)))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.CHALLENGE_INVALID));
  }

  @Test
  void revokedDeviceLosesItsTokenAndRenewalButWhatItAppliedStays() {
    String tenant = device.tenantId();
    String token = tokenOf(device);
    UUID id = fx.uuid();
    push(fx.create(id));
    org.civicsync.contracts.Device view = tenancy.revoke(device.deviceId());
    assertThat(view.revokedAt()).isNotNull();
    assertThatThrownBy(() -> tenancy.authenticate(Optional.of(token)))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.DEVICE_REVOKED));
    assertThatThrownBy(() -> tenancy.challenge(new org.civicsync.contracts.ChallengeRequest(device.deviceId())))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.DEVICE_REVOKED));
    Caller.Device admin = newDevice(tenant);
    assertThat(pullAll(admin, Set.of())).extracting(Change::recordId).containsExactly(id);
  }

  // ---------------------------------------------------------------- tenant isolation

  @Test
  void anotherTenantReusingMutationAndRecordIdsLearnsNothingAndChangesNothing() {
    UUID id = fx.uuid();
    Mutation create = fx.create(id);
    push(create);
    Caller.Device other = newDevice(newTenant());
    Mutation sameIds = new Mutation(create.mutationId(), create.deviceSeq(), create.collection(), id, MutationOp.CREATE, 0,
        fx.appointment(), create.hlc(), create.clientTime());
    MutationResult r = push.push(other, TestDevices.signed(other, List.of(sameIds))).results().get(0);
    assertThat(r.status()).as("no MUTATION_ID_REUSED, no RECORD_EXISTS: B's ids are B's own").isEqualTo(MutationStatus.APPLIED);
    assertThat(r.replayed()).isNull();
    Mutation update = fx.update(id, 1, Fixtures.patch("status", "cancelled"));
    push.push(other, TestDevices.signed(other, List.of(new Mutation(update.mutationId(), 2, update.collection(), id, MutationOp.UPDATE, 1,
        update.data(), update.hlc(), update.clientTime()))));
    assertThat(pullAll(device, Set.of())).singleElement().satisfies(c -> assertThat(c.data().path("status").asText()).isEqualTo("booked"));
    assertThat(pullAll(other, Set.of())).singleElement().satisfies(c -> assertThat(c.data().path("status").asText()).isEqualTo("cancelled"));
    assertThat(store.recordLog(device.tenantId(), new org.civicsync.server.store.RecordKey("appointments", id), 10)).hasSize(1);
  }

  // ---------------------------------------------------------------- roles and scopes

  /** country → district-n, district-s → clinic-n1, clinic-n2 (under n), clinic-s1 (under s). */
  private void orgTree(String tenant) {
    tenancy.putOrgUnit(tenant, "country", new org.civicsync.contracts.OrgUnitRequest(null, "Country"));
    tenancy.putOrgUnit(tenant, "district-n", new org.civicsync.contracts.OrgUnitRequest("country", "North"));
    tenancy.putOrgUnit(tenant, "district-s", new org.civicsync.contracts.OrgUnitRequest("country", "South"));
    tenancy.putOrgUnit(tenant, "clinic-n1", new org.civicsync.contracts.OrgUnitRequest("district-n", "North 1"));
    tenancy.putOrgUnit(tenant, "clinic-n2", new org.civicsync.contracts.OrgUnitRequest("district-n", "North 2"));
    tenancy.putOrgUnit(tenant, "clinic-s1", new org.civicsync.contracts.OrgUnitRequest("district-s", "South 1"));
  }

  private Mutation booking(String clinic) {
    ObjectNode d = fx.appointment();
    d.put("clinicId", clinic);
    return fx.create(fx.uuid(), d);
  }

  @Test
  void eachRoleMayTakeExactlyTheActionsItsCollectionGrants() {
    String tenant = device.tenantId();
    orgTree(tenant);
    Caller.Device worker = TestDevices.enroll(tenancy, tenant, "worker", List.of("fieldWorker"), List.of("clinic-n1"));
    Caller.Device supervisor = TestDevices.enroll(tenancy, tenant, "super", List.of("supervisor"), List.of("district-n"));
    Caller.Device auditor = TestDevices.enroll(tenancy, tenant, "auditor", List.of("auditor"), List.of("country"));
    Fixtures wf = new Fixtures(fx.uuid().getMostSignificantBits());
    ObjectNode data = fx.appointment();
    data.put("clinicId", "clinic-n1");
    UUID id = wf.uuid();
    assertThat(push.push(worker, TestDevices.signed(worker, List.of(wf.create(id, data)))).results().get(0).status())
        .as("fieldWorker creates").isEqualTo(MutationStatus.APPLIED);
    assertThat(push.push(worker, TestDevices.signed(worker, List.of(wf.update(id, 1, Fixtures.patch("status", "checked_in")))))
        .results().get(0).status()).as("fieldWorker updates").isEqualTo(MutationStatus.APPLIED);
    MutationResult del = push.push(worker, TestDevices.signed(worker, List.of(wf.delete(id, 2)))).results().get(0);
    assertThat(del.error().code()).as("fieldWorker may not delete").isEqualTo(ErrorCode.FORBIDDEN.name());
    ObjectNode clinic = Json.mapper().createObjectNode().put("clinicId", "clinic-n1").put("name", "North 1");
    assertThat(push.push(worker, TestDevices.signed(worker, List.of(wf.mutation("clinics", wf.uuid(), MutationOp.CREATE, 0, clinic))))
        .results().get(0).error().code()).as("fieldWorker may not create clinics").isEqualTo(ErrorCode.FORBIDDEN.name());
    Fixtures af = new Fixtures(fx.uuid().getMostSignificantBits());
    assertThat(push.push(auditor, TestDevices.signed(auditor, List.of(af.create(af.uuid(), data.deepCopy())))).results().get(0)
        .error().code()).as("auditor writes nothing").isEqualTo(ErrorCode.FORBIDDEN.name());
    assertThat(pullAll(auditor, Set.of())).as("auditor reads no records").isEmpty();
    assertThatThrownBy(() -> inbox.list(worker, Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, x -> assertThat(x.code()).isEqualTo(ErrorCode.FORBIDDEN));
    List<InboxItemView> items = inbox.list(supervisor, Optional.of("open"), Optional.of("rejected"), Optional.empty(), Optional.empty()).items();
    assertThat(items).as("the supervisor of the district sees the worker's refused delete, not the auditor's (no clinic scope check"
        + " passes for country-wide auditor writes in the north only)").anySatisfy(i -> assertThat(i.mutationId()).isEqualTo(del.mutationId()));
    Fixtures sf = new Fixtures(fx.uuid().getMostSignificantBits());
    assertThat(push.push(supervisor, TestDevices.signed(supervisor, List.of(sf.delete(id, 2)))).results().get(0).status())
        .as("supervisor deletes").isEqualTo(MutationStatus.APPLIED);
  }

  @Test
  void pullHoldsExactlyTheRecordsInTheUsersOrgUnitsAndWritesOutsideAreRefused() {
    String tenant = device.tenantId();
    orgTree(tenant);
    Map<String, UUID> byClinic = new HashMap<>();
    for (String c : List.of("clinic-n1", "clinic-n2", "clinic-s1", "nowhere")) {
      Mutation m = booking(c);
      push(m);
      byClinic.put(c, m.recordId());
    }
    Caller.Device north = TestDevices.enroll(tenancy, tenant, "north", List.of("fieldWorker"), List.of("district-n"));
    assertThat(pullAll(north, Set.of("appointments"))).extracting(Change::recordId)
        .containsExactlyInAnyOrder(byClinic.get("clinic-n1"), byClinic.get("clinic-n2"));
    Fixtures nf = new Fixtures(fx.uuid().getMostSignificantBits());
    ObjectNode south = fx.appointment();
    south.put("clinicId", "clinic-s1");
    MutationResult create = push.push(north, TestDevices.signed(north, List.of(nf.create(nf.uuid(), south)))).results().get(0);
    assertThat(create.error().code()).isEqualTo(ErrorCode.OUT_OF_SCOPE.name());
    MutationResult update = push.push(north, TestDevices.signed(north, List.of(
        nf.update(byClinic.get("clinic-s1"), 1, Fixtures.patch("status", "cancelled"))))).results().get(0);
    assertThat(update.error().code()).as("a record outside").isEqualTo(ErrorCode.OUT_OF_SCOPE.name());
    MutationResult move = push.push(north, TestDevices.signed(north, List.of(
        nf.update(byClinic.get("clinic-n1"), 1, Fixtures.patch("clinicId", "clinic-s1"))))).results().get(0);
    assertThat(move.error().code()).as("moving one of its records outside").isEqualTo(ErrorCode.OUT_OF_SCOPE.name());
    assertThat(pullAll(device, Set.of())).as("nothing changed").allSatisfy(c -> assertThat(c.version()).isEqualTo(1));
  }

  @Test
  void aScopeChangeConvergesWithRemovesAndUpsertsWithoutAFullDownload() {
    String tenant = device.tenantId();
    orgTree(tenant);
    Map<UUID, String> clinicOf = new HashMap<>();
    for (String c : List.of("clinic-n1", "clinic-n1", "clinic-n2", "clinic-s1", "clinic-s1")) {
      Mutation m = booking(c);
      push(m);
      clinicOf.put(m.recordId(), c);
    }
    Caller.Device worker = TestDevices.enroll(tenancy, tenant, "mover", List.of("fieldWorker"), List.of("clinic-n1", "clinic-n2"));
    Map<UUID, Change> local = new HashMap<>();
    String cursor = syncInto(local, worker, Optional.empty()).cursor();
    assertThat(local.keySet()).allSatisfy(id -> assertThat(clinicOf.get(id)).startsWith("clinic-n"));
    assertThat(local).hasSize(3);
    tenancy.putUser(tenant, "mover", new org.civicsync.contracts.UserRequest("mover", List.of("fieldWorker"), List.of("clinic-n2", "district-s")), true);
    Caller.Device moved = (Caller.Device) tenancy.authenticate(Optional.of(tokenOf(worker)));
    List<Change> seen = new ArrayList<>();
    Sync s = syncInto(local, moved, Optional.of(cursor));
    seen.addAll(s.changes());
    assertThat(local.keySet()).containsExactlyInAnyOrderElementsOf(clinicOf.entrySet().stream()
        .filter(e -> !e.getValue().equals("clinic-n1")).map(Map.Entry::getKey).toList());
    assertThat(seen).filteredOn(c -> c.op() == ChangeOp.REMOVE).extracting(Change::recordId)
        .containsExactlyInAnyOrderElementsOf(clinicOf.entrySet().stream().filter(e -> e.getValue().equals("clinic-n1")).map(Map.Entry::getKey).toList());
    assertThat(seen).filteredOn(c -> c.op() == ChangeOp.UPSERT).extracting(Change::recordId)
        .as("only what entered the scope is sent, not what stayed")
        .containsExactlyInAnyOrderElementsOf(clinicOf.entrySet().stream().filter(e -> e.getValue().equals("clinic-s1")).map(Map.Entry::getKey).toList());
    // Later changes flow as before, in the new scope.
    Mutation late = booking("clinic-s1");
    push(late);
    Sync after = syncInto(local, moved, Optional.of(s.cursor()));
    assertThat(after.changes()).extracting(Change::recordId).containsExactly(late.recordId());
  }

  @Test
  void aRecordMovedToAnotherUnitArrivesAsARemoveForThoseWhoSawItThere() {
    String tenant = device.tenantId();
    orgTree(tenant);
    Mutation m = booking("clinic-n1");
    push(m);
    Caller.Device north = TestDevices.enroll(tenancy, tenant, "n-worker", List.of("fieldWorker"), List.of("clinic-n1"));
    Caller.Device south = TestDevices.enroll(tenancy, tenant, "s-worker", List.of("fieldWorker"), List.of("clinic-s1"));
    Map<UUID, Change> nLocal = new HashMap<>();
    Map<UUID, Change> sLocal = new HashMap<>();
    String nc = syncInto(nLocal, north, Optional.empty()).cursor();
    String sc = syncInto(sLocal, south, Optional.empty()).cursor();
    assertThat(nLocal).containsOnlyKeys(m.recordId());
    assertThat(sLocal).isEmpty();
    push(fx.update(m.recordId(), 1, Fixtures.patch("clinicId", "clinic-s1")));
    Sync n = syncInto(nLocal, north, Optional.of(nc));
    assertThat(n.changes()).singleElement().satisfies(c -> assertThat(c.op()).isEqualTo(ChangeOp.REMOVE));
    assertThat(nLocal).isEmpty();
    syncInto(sLocal, south, Optional.of(sc));
    assertThat(sLocal).containsOnlyKeys(m.recordId());
    assertThat(sLocal.get(m.recordId()).version()).isEqualTo(2);
  }

  private record Sync(List<Change> changes, String cursor) {}

  /** Pulls until no more, applying changes to a local model as a client would. */
  private Sync syncInto(Map<UUID, Change> local, Caller.Device d, Optional<String> from) {
    List<Change> all = new ArrayList<>();
    Optional<String> cursor = from;
    while (true) {
      PullResponse page = pull.pull(d, cursor, Optional.of("2"), Optional.empty());
      for (Change c : page.changes()) {
        all.add(c);
        if (c.op() == ChangeOp.REMOVE || c.op() == ChangeOp.DELETE) {
          local.remove(c.recordId());
        } else {
          local.put(c.recordId(), c);
        }
      }
      cursor = Optional.of(page.cursor());
      if (!page.hasMore()) {
        return new Sync(all, page.cursor());
      }
    }
  }

  private String tokenOf(Caller.Device d) {
    // Tests renew by key: the token itself is never stored in clear.
    org.civicsync.contracts.Challenge ch = tenancy.challenge(new org.civicsync.contracts.ChallengeRequest(d.deviceId()));
    return tenancy.renewToken(new org.civicsync.contracts.TokenRequest(d.deviceId(), ch.challenge(), TestDevices.keys(d.deviceId())
        .privateKey().sign(org.civicsync.core.signing.Envelopes.tokenSigningInput(d.tenantId(), d.deviceId(), ch.challenge())))).token();
  }

  // ---------------------------------------------------------------- audit chain

  @Test
  void theAuditChainVerifiesAndCoversMutationsOutcomesResolutionsAndAdminActions() {
    org.civicsync.server.audit.AuditVerifier verifier = new org.civicsync.server.audit.AuditVerifier(store);
    UUID id = fx.uuid();
    push(fx.create(id));
    push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000001")));
    MutationResult parked = push(fx.update(id, 1, Fixtures.patch("patientPhone", "+94770000002"))).get(0);
    assertThat(parked.status()).isEqualTo(MutationStatus.CONFLICT);
    inbox.resolve(device, parked.conflictId(), new ResolveRequest("takeClient", null, "patient called"), Optional.empty());
    tenancy.revoke(newDevice(device.tenantId()).deviceId());
    org.civicsync.contracts.AuditVerification v = verifier.verify(device.tenantId());
    assertThat(v.ok()).as("%s", v.firstBroken()).isTrue();
    assertThat(v.logEntries()).isEqualTo(4);
    assertThat(v.outcomes()).isEqualTo(1);
    assertThat(v.entries()).isGreaterThanOrEqualTo(8);
    String content = store.read(device.tenantId(), r -> r.audit(0, 1000)).stream().map(org.civicsync.server.store.AuditEntry::content)
        .reduce("", String::concat);
    assertThat(content).contains("tenant.created", "user.put", "enrollmentCode.issued", "device.enrolled", "device.revoked", "\"resolved\"");
    org.civicsync.contracts.RecordTrail trail = new org.civicsync.server.audit.RecordTrails(store, catalog).trail(device.tenantId(), "appointments", id);
    assertThat(trail.entries()).extracting(org.civicsync.contracts.RecordTrail.Entry::status)
        .containsExactly(MutationStatus.APPLIED, MutationStatus.APPLIED, MutationStatus.CONFLICT, MutationStatus.MERGED);
    assertThat(trail.entries().get(0).userId()).isEqualTo(device.access().userId());
    assertThat(trail.entries().get(3).note().path("comment").asText()).isEqualTo("patient called");
  }

  @Test
  void verifyNamesTheRowThatWasAlteredDeletedOrReordered() {
    org.civicsync.server.audit.AuditVerifier verifier = new org.civicsync.server.audit.AuditVerifier(store);
    for (int round = 0; round < 6; round++) {
      String tenant = newTenant();
      Caller.Device d = newDevice(tenant);
      Fixtures f = new Fixtures(round * 31L + 7);
      List<Mutation> ms = new ArrayList<>();
      for (int i = 0; i < 5; i++) {
        ms.add(f.create(f.uuid()));
      }
      push.push(d, TestDevices.signed(d, ms.subList(0, 3)));
      push.push(d, TestDevices.signed(d, ms.subList(3, 5)));
      assertThat(verifier.verify(tenant).ok()).isTrue();
      long[] seqs = store.read(tenant, r -> r.logged(0, 100)).stream().mapToLong(org.civicsync.server.store.LoggedMutation::seq).toArray();
      long victim = seqs[2];
      long lastAudit = store.read(tenant, r -> r.auditHead()).seq();
      String table;
      switch (round) {
        case 0 -> { tampering().alterLogEntry(tenant, victim); table = "mutation_log"; }
        case 1 -> { tampering().deleteLogEntry(tenant, victim); table = "mutation_log"; }
        case 2 -> { tampering().swapLogEntries(tenant, seqs[1], seqs[2]); table = "mutation_log"; victim = seqs[1]; }
        case 3 -> { tampering().alterAuditEntry(tenant, lastAudit - 1); table = "audit_log"; victim = lastAudit - 1; }
        case 4 -> { tampering().deleteAuditEntry(tenant, lastAudit - 1); table = "audit_log"; victim = lastAudit - 1; }
        default -> { tampering().deleteAuditEntry(tenant, lastAudit); table = "audit_log"; victim = lastAudit; }
      }
      org.civicsync.contracts.AuditVerification v = verifier.verify(tenant);
      int r = round;
      assertThat(v.ok()).as("round %s", r).isFalse();
      assertThat(v.firstBroken().table()).as("round %s: %s", r, v.firstBroken()).isEqualTo(table);
      assertThat(v.firstBroken().seq()).as("round %s: %s", r, v.firstBroken()).isEqualTo(victim);
    }
  }

  @Test
  void rowsWrittenBeforeTheAuditChainExistedAreAdoptedOnceThenVerified() {
    String tenant = "legacy-" + UUID.randomUUID().toString().substring(0, 8);
    store.createTenant(new org.civicsync.server.store.TenantRow(tenant, Instant.now()));
    Mutation m = fx.create(fx.uuid());
    // Written through the plain store, as a database from before the chain holds it.
    store.write(tenant, tx -> {
      tx.appendLog(List.of(new org.civicsync.server.store.LoggedMutation(1, m, "legacy", UUID.randomUUID(),
          MutationResult.applied(m.mutationId(), m.recordId(), 1), Instant.now(), null)));
      tx.advanceHead(1);
      return null;
    });
    org.civicsync.server.audit.AuditVerifier verifier = new org.civicsync.server.audit.AuditVerifier(store);
    assertThat(verifier.verify(tenant).ok()).as("unvouched rows are reported").isFalse();
    assertThat(org.civicsync.server.audit.AuditAdoption.adoptAll(store, Clock.systemUTC())).contains(tenant);
    assertThat(verifier.verify(tenant).ok()).isTrue();
    assertThat(verifier.verify(tenant).logEntries()).isEqualTo(1);
    long head = store.read(tenant, r -> r.auditHead()).seq();
    org.civicsync.server.audit.AuditAdoption.adoptAll(store, Clock.systemUTC());
    assertThat(store.read(tenant, r -> r.auditHead()).seq()).as("adopted once").isEqualTo(head);
    // Such rows carry no detail digest: compaction leaves them whole, and the chain still holds.
    assertThat(compactorAt(store, Instant.now().plusMillis(1)).compact(tenant).logEntries()).isZero();
    assertThat(verifier.verify(tenant).ok()).isTrue();
  }

  // ---------------------------------------------------------------- compaction

  /** A compactor with a 90-day horizon whose clock is 90 days after {@code at}: what was logged before {@code at} is past it. */
  private static org.civicsync.server.compaction.Compactor compactorAt(ServerStore store, Instant at) {
    return new org.civicsync.server.compaction.Compactor(store, new FakeClock(at.plus(java.time.Duration.ofDays(90))),
        java.time.Duration.ofDays(90), 3);
  }

  private LoggedMutation logged(UUID mutationId) {
    return store.write(device.tenantId(), tx -> tx.findLogged(List.of(mutationId)).get(mutationId));
  }

  @Test
  void compactionBuriesOldTombstonesWhoseIdsStayDeleted() {
    UUID gone = fx.uuid();
    UUID kept = fx.uuid();
    push(fx.create(gone), fx.create(kept), fx.delete(gone, 1));
    Instant cut = Instant.now().plusMillis(1);
    UUID recent = fx.uuid();
    org.civicsync.server.compaction.Compactor.Report r = compactorAt(store, cut).compact(device.tenantId());
    push(fx.create(recent));
    push(fx.delete(recent, 1)); // after the cut: stays in the projection

    assertThat(r.tombstones()).isEqualTo(1);
    assertThat(r.watermark()).isEqualTo(3);
    assertThat(store.watermark(device.tenantId())).isEqualTo(3);
    assertThat(pullAll(device, Set.of())).extracting(Change::recordId).as("a fresh download has no buried tombstone")
        .containsExactly(kept, recent);
    assertThat(store.findRecord(device.tenantId(), new RecordKey("appointments", gone))).get()
        .satisfies(t -> {
          assertThat(t.deleted()).isTrue();
          assertThat(t.version()).isEqualTo(2);
          assertThat(t.seq()).isEqualTo(3);
        });
    // Creating a buried id again is refused exactly as creating a tombstone's id is.
    List<MutationResult> again = push(fx.create(gone), fx.create(recent));
    assertThat(again).allSatisfy(x -> {
      assertThat(x.status()).isEqualTo(MutationStatus.REJECTED);
      assertThat(x.error().code()).isEqualTo(ErrorCode.RECORD_EXISTS.name());
    });
    assertThat(push(fx.update(gone, 2, Fixtures.patch("status", "checked_in"))).get(0).error().code())
        .isEqualTo(ErrorCode.RECORD_DELETED.name());
    assertThat(compactorAt(store, cut).compact(device.tenantId()).tombstones()).as("a second run finds nothing more").isZero();
  }

  @Test
  void compactionDropsSupersededDetailButOldRetriesGetTheirFirstAnswer() {
    UUID id = fx.uuid();
    Mutation create = fx.create(id);
    Mutation checkIn = fx.update(id, 1, Fixtures.patch("status", "checked_in"));
    Mutation refused = fx.update(id, 2, Fixtures.patch("status", "booked")); // not a transition: rejected
    Mutation done = fx.update(id, 2, Fixtures.patch("status", "completed"));
    List<MutationResult> first = push(create, checkIn, refused, done);
    assertThat(first).extracting(MutationResult::status)
        .containsExactly(MutationStatus.APPLIED, MutationStatus.APPLIED, MutationStatus.REJECTED, MutationStatus.APPLIED);

    org.civicsync.server.compaction.Compactor.Report r = compactorAt(store, Instant.now().plusMillis(1)).compact(device.tenantId());

    assertThat(r.logEntries()).as("create, check-in and the rejected change; not the entry of the current state").isEqualTo(3);
    assertThat(r.tombstones()).isZero();
    assertThat(r.watermark()).as("nothing left the feed").isZero();
    for (Mutation m : List.of(create, checkIn, refused)) {
      LoggedMutation e = logged(m.mutationId());
      assertThat(e.compacted()).isTrue();
      assertThat(e.after()).isNull();
      assertThat(e.mutation().data()).isNull();
      assertThat(e.mutation().signature()).isNull();
      assertThat(e.mutation().recordId()).isEqualTo(id);
      assertThat(e.detailDigest()).isNotNull();
    }
    LoggedMutation current = logged(done.mutationId());
    assertThat(current.compacted()).isFalse();
    assertThat(current.after().data().path("status").asText()).isEqualTo("completed");
    // Old retries still get the answers they first got, marked as replays.
    PushResponse retry = push.push(device, TestDevices.signed(device, List.of(create, checkIn, refused, done)));
    for (int i = 0; i < first.size(); i++) {
      assertThat(retry.results().get(i).status()).isEqualTo(first.get(i).status());
      assertThat(retry.results().get(i).version()).isEqualTo(first.get(i).version());
      assertThat(retry.results().get(i).replayed()).isTrue();
    }
    // The base at version 1 is gone: a stale change against it goes to a person.
    Optional<org.civicsync.core.records.RecordState> base1 = store.write(device.tenantId(), tx -> tx.findVersion(new RecordKey("appointments", id), 1));
    Optional<org.civicsync.core.records.RecordState> base3 = store.write(device.tenantId(), tx -> tx.findVersion(new RecordKey("appointments", id), 3));
    assertThat(base1).isEmpty();
    assertThat(base3).isPresent();
    assertThat(pullAll(device, Set.of())).singleElement()
        .satisfies(c -> assertThat(c.data().path("status").asText()).isEqualTo("completed"));
    assertThat(new org.civicsync.server.audit.AuditVerifier(store).verify(device.tenantId()).ok()).isTrue();
  }

  @Test
  void compactionLeavesWhatIsNewerThanTheHorizon() throws Exception {
    UUID old = fx.uuid();
    push(fx.create(old), fx.update(old, 1, Fixtures.patch("status", "checked_in")));
    Thread.sleep(5);
    Instant cut = Instant.now();
    Thread.sleep(5);
    UUID young = fx.uuid();
    Mutation youngCreate = fx.create(young);
    push(youngCreate, fx.update(young, 1, Fixtures.patch("status", "checked_in")), fx.delete(old, 2));

    org.civicsync.server.compaction.Compactor.Report r = compactorAt(store, cut).compact(device.tenantId());

    assertThat(r.cutSeq()).isEqualTo(2);
    assertThat(r.logEntries()).as("both of the old record's: it was deleted since").isEqualTo(2);
    assertThat(r.tombstones()).as("deleted after the cut").isZero();
    assertThat(logged(youngCreate.mutationId()).compacted()).isFalse();
    assertThat(pullAll(device, Set.of())).extracting(Change::recordId).containsExactlyInAnyOrder(old, young);
  }

  @Test
  void aPullFromACursorBelowTheWatermarkAnswersResyncRequired() {
    UUID id = fx.uuid();
    push(fx.create(id));
    String before = pull.pull(device, Optional.empty(), Optional.empty(), Optional.empty()).cursor();
    push(fx.delete(id, 1));
    String after = pull.pull(device, Optional.of(before), Optional.empty(), Optional.empty()).cursor();
    compactorAt(store, Instant.now().plusMillis(1)).compact(device.tenantId());

    assertThatThrownBy(() -> pull.pull(device, Optional.of(before), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> {
          assertThat(e.code()).isEqualTo(ErrorCode.RESYNC_REQUIRED);
          assertThat(e.status()).isEqualTo(410);
        });
    assertThat(pull.pull(device, Optional.of(after), Optional.empty(), Optional.empty()).changes())
        .as("a cursor that saw the deletion goes on").isEmpty();
    assertThat(pull.pull(device, Optional.empty(), Optional.empty(), Optional.empty()).changes()).as("a fresh download").isEmpty();
  }

  @Test
  void compactedRowsStillVerifyAndAlteringWhatTheyKeptBreaksTheChain() {
    UUID id = fx.uuid();
    push(fx.create(id), fx.update(id, 1, Fixtures.patch("status", "checked_in")));
    compactorAt(store, Instant.now().plusMillis(1)).compact(device.tenantId());
    org.civicsync.server.audit.AuditVerifier verifier = new org.civicsync.server.audit.AuditVerifier(store);
    assertThat(verifier.verify(device.tenantId()).ok()).isTrue();
    assertThat(store.read(device.tenantId(), rtx -> rtx.audit(0, 1000)).stream()
        .filter(a -> a.content().contains("\"compaction\"")).count()).as("the compaction is itself in the chain").isEqualTo(1);

    tampering().alterLogEntry(device.tenantId(), 1);
    org.civicsync.contracts.AuditVerification v = verifier.verify(device.tenantId());
    assertThat(v.ok()).isFalse();
    assertThat(v.firstBroken().table()).isEqualTo("mutation_log");
    assertThat(v.firstBroken().seq()).isEqualTo(1);
  }

  @Test
  void aRebuildAfterCompactionSendsEveryDeviceToAFreshDownload() {
    UUID id = fx.uuid();
    push(fx.create(id), fx.update(id, 1, Fixtures.patch("status", "checked_in")), fx.create(fx.uuid()));
    push(fx.delete(id, 2));
    compactorAt(store, Instant.now().plusMillis(1)).compact(device.tenantId());
    String behind = pull.pull(device, Optional.empty(), Optional.empty(), Optional.empty()).cursor();
    push(fx.create(fx.uuid()));
    String atHead = pull.pull(device, Optional.of(behind), Optional.empty(), Optional.empty()).cursor();

    new org.civicsync.server.projection.ProjectionRebuilder(store, catalog).rebuild(device.tenantId());

    assertThat(store.watermark(device.tenantId())).isEqualTo(store.head(device.tenantId()));
    assertThat(pullAll(device, Set.of())).hasSize(2);
    assertThat(store.findRecord(device.tenantId(), new RecordKey("appointments", id))).get()
        .satisfies(t -> assertThat(t.deleted()).isTrue());
    assertThatThrownBy(() -> pull.pull(device, Optional.of(behind), Optional.empty(), Optional.empty()))
        .isInstanceOfSatisfying(ApiException.class, e -> assertThat(e.code()).isEqualTo(ErrorCode.RESYNC_REQUIRED));
    assertThat(pull.pull(device, Optional.of(atHead), Optional.empty(), Optional.empty()).changes()).isEmpty();
  }

  @Test
  void prunePublishedEventsDeletesOnlyPublishedRowsBeforeTheCutoff() {
    PushService withEvents = new PushService(org.civicsync.server.audit.AuditedStore.wrap(store, catalog, Clock.systemUTC())
        .withDomainEvents(true), catalog, Clock.systemUTC());
    withEvents.push(device, TestDevices.signed(device, List.of(fx.create(fx.uuid()), fx.create(fx.uuid()))));
    List<org.civicsync.server.store.OutboxEvent> events = outbox();
    Instant longAgo = Instant.parse("2001-01-01T00:00:00Z");
    store.markPublished(events.subList(0, 1), longAgo);

    assertThat(store.prunePublishedEvents(longAgo, 100)).as("published at the cutoff: not before it").isZero();
    assertThat(store.prunePublishedEvents(longAgo.plusSeconds(1), 100)).isEqualTo(1);
    assertThat(store.prunePublishedEvents(longAgo.plusSeconds(1), 100)).isZero();
    assertThat(outbox()).extracting(org.civicsync.server.store.OutboxEvent::seq).containsExactly(events.get(1).seq());
  }

  /** Direct changes to the store's tables, as an attacker with database access would make them. */
  protected abstract Tampering tampering();

  /** What {@link #tampering()} must be able to do, each on one row of one tenant. */
  public interface Tampering {
    /** Changes the stored content of the log entry: its mutation's {@code hlc}, which compaction keeps. */
    void alterLogEntry(String tenantId, long seq);

    void deleteLogEntry(String tenantId, long seq);

    /** Exchanges the seqs of two log entries. */
    void swapLogEntries(String tenantId, long seqA, long seqB);

    /** Changes the content of an audit entry, leaving its hash. */
    void alterAuditEntry(String tenantId, long auditSeq);

    void deleteAuditEntry(String tenantId, long auditSeq);
  }

  // ---------------------------------------------------------------- helpers

  private String newTenant() {
    String id = "t" + TENANTS.incrementAndGet() + "-" + UUID.randomUUID().toString().substring(0, 8);
    tenancy.createTenant(new CreateTenantRequest(id));
    return id;
  }

  private Caller.Device newDevice(String tenant) {
    return TestDevices.enroll(tenancy, tenant);
  }

  /** The mutation as the tenant's log holds it (to send it again). */
  private Mutation storedMutation(UUID mutationId) {
    return store.write(device.tenantId(), tx -> tx.findLogged(List.of(mutationId)).get(mutationId).mutation());
  }

  private List<MutationResult> push(Mutation... ms) {
    PushResponse r = push.push(device, TestDevices.signed(device, List.of(ms)));
    assertThat(r.results()).hasSize(ms.length);
    for (int i = 0; i < ms.length; i++) {
      assertThat(r.results().get(i).mutationId()).isEqualTo(ms[i].mutationId());
    }
    return r.results();
  }

  private List<Change> pullAll(Caller.Device d, Set<String> collections) {
    List<Change> out = new ArrayList<>();
    Optional<String> cursor = Optional.empty();
    Optional<String> filter = collections.isEmpty() ? Optional.empty() : Optional.of(String.join(",", collections));
    while (true) {
      PullResponse page = pull.pull(d, cursor, Optional.of("5000"), filter);
      out.addAll(page.changes());
      cursor = Optional.of(page.cursor());
      if (!page.hasMore()) {
        return out;
      }
    }
  }
}
