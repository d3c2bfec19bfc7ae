package org.civicsync.core.records;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.function.LongFunction;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationOp;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.clock.Hlc;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.conflicts.ConflictPolicy;
import org.civicsync.core.conflicts.Settle;
import org.civicsync.core.conflicts.Settlement;
import org.civicsync.core.validation.Violation;

/**
 * The version rules. A mutation whose structure already passed the contract schema is decided
 * against the record's current state:
 *
 * <ul>
 *   <li>create: applies as version 1 unless the id exists or existed (tombstones keep ids taken);
 *   <li>update/delete with {@code baseVersion} equal to the server's version: applies, version + 1
 *       (field kinds still hold: a monotonic field may not move backwards);
 *   <li>older {@code baseVersion}: the collection's conflict policy settles it from the base (the
 *       record at {@code baseVersion}), the server's state and the change — merged, dropped
 *       fields reported, or parked for a person;
 *   <li>newer {@code baseVersion}: rejected, the client claims a version never issued.
 * </ul>
 */
public final class MutationRules {
  /** Default for how far a mutation's clock may run ahead of the server's. */
  public static final Duration DEFAULT_MAX_CLOCK_SKEW = Duration.ofHours(24);

  private MutationRules() {}

  /**
   * What the rules need beyond the mutation and the record.
   *
   * @param versions the record's state at an earlier version (the base of a stale change)
   */
  public record Context(CollectionCatalog catalog, Instant now, Duration maxClockSkew, LongFunction<Optional<RecordState>> versions) {}

  /** Decides one mutation against the record's current state (including earlier mutations of the same push). */
  public static Outcome decide(Context ctx, Mutation m, Optional<RecordState> current) {
    Optional<CollectionSchema> found = ctx.catalog().find(m.collection());
    if (!found.isPresent()) {
      return rejected(m, ErrorCode.UNKNOWN_COLLECTION, "unknown collection '" + m.collection() + "'", "/collection");
    }
    Hlc hlc = Hlc.parse(m.hlc());
    if (hlc.millis() > ctx.now().plus(ctx.maxClockSkew()).toEpochMilli()) {
      return rejected(m, ErrorCode.CLOCK_SKEW, "the change's clock " + m.hlc() + " is more than " + ctx.maxClockSkew().toHours()
          + " h ahead of the server's (" + ctx.now() + "); correct the device clock", "/hlc");
    }
    CollectionSchema schema = found.get();
    ConflictPolicy policy = schema.policy();
    Instant now = ctx.now();
    if (m.op() == MutationOp.CREATE) {
      if (current.isPresent()) {
        return rejected(m, ErrorCode.RECORD_EXISTS,
            "record " + m.recordId() + " already exists" + (current.get().deleted() ? " (deleted)" : ""), "/recordId");
      }
      ObjectNode data = withDefaults(schema, m.data());
      return validated(schema, m, new RecordState(1, false, data, now, clocks(data, m.hlc())), List.of(), false, null);
    }
    if (!current.isPresent()) {
      return rejected(m, ErrorCode.RECORD_NOT_FOUND, "record " + m.recordId() + " does not exist", "/recordId");
    }
    RecordState cur = current.get();
    if (m.baseVersion() > cur.version()) {
      return rejected(m, ErrorCode.INVALID_BASE_VERSION,
          "baseVersion " + m.baseVersion() + " is newer than the server's version " + cur.version(), "/baseVersion");
    }
    boolean stale = m.baseVersion() < cur.version();
    if (!stale) {
      if (cur.deleted()) {
        return rejected(m, ErrorCode.RECORD_DELETED, "record " + m.recordId() + " was deleted at version " + cur.version(), "/recordId");
      }
      if (m.op() == MutationOp.DELETE) {
        return applied(m, tombstone(cur, now));
      }
      return settleUpdate(ctx, schema, m, cur, cur, cur, false);
    }
    Optional<RecordState> known = ctx.versions().apply(m.baseVersion());
    if (!known.isPresent()) {
      // The base cannot be reconstructed (e.g. logged before after-states were kept): without it
      // no field can be judged, so a person decides.
      List<String> fields = new java.util.ArrayList<>();
      if (m.data() != null) {
        m.data().fieldNames().forEachRemaining(fields::add);
      }
      return park(m, null, cur, fields);
    }
    RecordState base = known.get();
    if (base.deleted()) {
      // The client saw the deletion and still sent a change: nothing to settle.
      return rejected(m, ErrorCode.RECORD_DELETED, "record " + m.recordId() + " was deleted at version " + base.version(), "/recordId");
    }
    if (m.op() == MutationOp.DELETE) {
      if (!cur.deleted() && Settle.parksWhole(policy)) {
        return park(m, base, cur, List.of());
      }
      if (cur.deleted()) {
        // Deleted on both sides: the client's wish already holds.
        return new Outcome(MutationResult.merged(m.mutationId(), serverRecord(m, cur), List.of(), null), Optional.empty(), Optional.empty());
      }
      if (policy.deleteWins()) {
        RecordState next = tombstone(cur, now);
        return new Outcome(MutationResult.merged(m.mutationId(), serverRecord(m, next), List.of(), "deleteWins"), Optional.of(next), Optional.empty());
      }
      return new Outcome(MutationResult.merged(m.mutationId(), serverRecord(m, cur), List.of(), "updateWins"), Optional.empty(), Optional.empty());
    }
    if (cur.deleted()) {
      if (policy.deleteWins()) {
        return Outcome.of(MutationResult.rejected(m.mutationId(), m.recordId(),
            ErrorDetail.of(ErrorCode.RECORD_DELETED, "record " + m.recordId() + " was deleted at version " + cur.version()
                + " while this change was offline; the collection lets the delete win", "/recordId"), serverRecord(m, cur)));
      }
      // updateWins: the change resurrects the record from what the client saw.
      RecordState revived = new RecordState(cur.version(), false, base.data(), cur.updatedAt(), base.fieldHlc());
      return settleUpdate(ctx, schema, m, base, revived, cur, true).withResolution("updateWins");
    }
    if (Settle.parksWhole(policy)) {
      return park(m, base, cur, List.of());
    }
    return settleUpdate(ctx, schema, m, base, cur, cur, true);
  }

  /**
   * @param onto the state the change is merged onto (the current record, or for a resurrection
   *     the base revived at the tombstone's version)
   * @param shown the record as the server really holds it, reported with a parked change
   */
  private static Outcome settleUpdate(Context ctx, CollectionSchema schema, Mutation m, RecordState base, RecordState onto,
      RecordState shown, boolean stale) {
    Settlement s = Settle.update(schema.policy(), base.data(), onto.data(), onto.fieldHlc(), m.data(), m.hlc(), stale);
    if (s instanceof Settlement.Reject r) {
      return rejected(m, r.code(), r.message(), r.field());
    }
    if (s instanceof Settlement.Park p) {
      return park(m, base, shown, p.conflictFields());
    }
    Settlement.Apply a = (Settlement.Apply) s;
    if (stale && !onto.deleted() && onto == shown && Settle.same(a.data(), onto.data())) {
      // Nothing of the change took effect: report it against the unchanged record, no new version.
      return new Outcome(MutationResult.merged(m.mutationId(), serverRecord(m, shown), a.overridden(), null),
          Optional.empty(), Optional.empty());
    }
    return validated(schema, m, new RecordState(onto.version() + 1, false, a.data(), ctx.now(), a.fieldHlc()),
        a.overridden(), a.combined() || stale, null);
  }

  private static Outcome park(Mutation m, RecordState base, RecordState cur, List<String> fields) {
    UUID conflictId = conflictId(m);
    ErrorDetail e = ErrorDetail.of(ErrorCode.VERSION_CONFLICT, fields.isEmpty()
        ? "the record changed since version " + m.baseVersion() + " and this collection's changes need a person's decision; parked as "
            + conflictId
        : "the change to " + String.join(", ", fields) + " made against version " + m.baseVersion()
            + " needs a person's decision (changed on the server too, or reviewed by policy); parked as " + conflictId,
        "/baseVersion");
    return new Outcome(MutationResult.conflict(m.mutationId(), m.recordId(), e, serverRecord(m, cur), conflictId, fields),
        Optional.empty(), Optional.of(new Outcome.Parked(base, cur, fields)));
  }

  /** The inbox id of a parked mutation: derived from it, so a replay names the same item. */
  public static UUID conflictId(Mutation m) {
    return UUID.nameUUIDFromBytes(("civicsync-conflict\n" + m.mutationId()).getBytes(StandardCharsets.UTF_8));
  }

  /** A copy of {@code data} with the schema's top-level defaults filled in where absent. */
  public static ObjectNode withDefaults(CollectionSchema schema, ObjectNode data) {
    ObjectNode out = data.deepCopy();
    for (Map.Entry<String, JsonNode> d : schema.defaults().entrySet()) {
      if (!out.has(d.getKey())) {
        out.set(d.getKey(), d.getValue().deepCopy());
      }
    }
    return out;
  }

  /**
   * An update's fields applied as sent: each present field replaces the old value, {@code null}
   * removes it. (What the policy then makes of a stale change is {@link Settle}'s business.)
   */
  public static ObjectNode patched(ObjectNode current, ObjectNode patch) {
    ObjectNode out = current.deepCopy();
    for (Iterator<Map.Entry<String, JsonNode>> it = patch.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (f.getValue().isNull()) {
        out.remove(f.getKey());
      } else {
        out.set(f.getKey(), f.getValue().deepCopy());
      }
    }
    return out;
  }

  /** The wire form of a server-side record. */
  public static ServerRecord serverRecord(Mutation m, RecordState s) {
    return new ServerRecord(m.collection(), m.recordId(), s.version(), s.deleted(), s.data(), s.updatedAt());
  }

  private static Map<String, String> clocks(ObjectNode data, String hlc) {
    Map<String, String> out = new HashMap<>();
    for (Iterator<String> it = data.fieldNames(); it.hasNext(); ) {
      out.put(it.next(), hlc);
    }
    return out;
  }

  private static RecordState tombstone(RecordState cur, Instant now) {
    return new RecordState(cur.version() + 1, true, null, now, Map.of());
  }

  private static Outcome validated(CollectionSchema schema, Mutation m, RecordState next, List<String> overridden,
      boolean merged, String resolution) {
    Optional<Violation> v = schema.check(next.data());
    if (v.isPresent()) {
      return rejected(m, ErrorCode.VALIDATION_FAILED, v.get().message(), "/data" + v.get().pointer());
    }
    MutationResult r = merged
        ? MutationResult.merged(m.mutationId(), serverRecord(m, next), overridden, resolution)
        : MutationResult.applied(m.mutationId(), m.recordId(), next.version());
    return new Outcome(r, Optional.of(next), Optional.empty());
  }

  private static Outcome applied(Mutation m, RecordState next) {
    return new Outcome(MutationResult.applied(m.mutationId(), m.recordId(), next.version()), Optional.of(next), Optional.empty());
  }

  private static Outcome rejected(Mutation m, ErrorCode code, String message, String field) {
    return Outcome.of(MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(code, message, field)));
  }
}
