package org.civicsync.core.records;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.contracts.ErrorDetail;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.contracts.ServerRecord;
import org.civicsync.core.collections.CollectionCatalog;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.validation.Violation;

/**
 * The version rules of protocol v1. A mutation whose structure already passed the contract schema
 * is decided against the record's current state:
 *
 * <ul>
 *   <li>create: applies as version 1 unless the id exists or existed (tombstones keep ids taken);
 *   <li>update/delete with {@code baseVersion} equal to the server's version: applies, version + 1;
 *   <li>older {@code baseVersion}: conflict, nothing applied, the server record returned;
 *   <li>newer {@code baseVersion}: rejected, the client claims a version never issued.
 * </ul>
 */
public final class MutationRules {
  private MutationRules() {}

  /**
   * Decides one mutation.
   *
   * @param current the record as committed before this mutation (including earlier mutations of
   *     the same push), if the server has it
   * @param now the server time stamped on an applied change
   */
  public static Outcome decide(
      CollectionCatalog catalog, Mutation m, Optional<RecordState> current, Instant now) {
    Optional<CollectionSchema> schema = catalog.find(m.collection());
    if (schema.isEmpty()) {
      return rejected(m, ErrorCode.UNKNOWN_COLLECTION, "unknown collection '" + m.collection() + "'", "/collection");
    }
    switch (m.op()) {
      case CREATE -> {
        if (current.isPresent()) {
          return rejected(m, ErrorCode.RECORD_EXISTS,
              "record " + m.recordId() + " already exists" + (current.get().deleted() ? " (deleted)" : ""), "/recordId");
        }
        ObjectNode data = withDefaults(schema.get(), m.data());
        return validated(schema.get(), m, data, new RecordState(1, false, data, now));
      }
      case UPDATE, DELETE -> {
        if (current.isEmpty()) {
          return rejected(m, ErrorCode.RECORD_NOT_FOUND, "record " + m.recordId() + " does not exist", "/recordId");
        }
        RecordState cur = current.get();
        if (m.baseVersion() > cur.version()) {
          return rejected(m, ErrorCode.INVALID_BASE_VERSION,
              "baseVersion " + m.baseVersion() + " is newer than the server's version " + cur.version(), "/baseVersion");
        }
        if (m.baseVersion() < cur.version()) {
          ErrorDetail e = ErrorDetail.of(ErrorCode.VERSION_CONFLICT,
              "baseVersion " + m.baseVersion() + " is older than the server's version " + cur.version(), "/baseVersion");
          return new Outcome(MutationResult.conflict(m.mutationId(), m.recordId(), e, serverRecord(m, cur)), Optional.empty());
        }
        if (cur.deleted()) {
          return rejected(m, ErrorCode.RECORD_DELETED, "record " + m.recordId() + " was deleted at version " + cur.version(), "/recordId");
        }
        if (m.op() == org.civicsync.contracts.MutationOp.DELETE) {
          RecordState next = new RecordState(cur.version() + 1, true, null, now);
          return applied(m, next);
        }
        ObjectNode data = patched(cur.data(), m.data());
        return validated(schema.get(), m, data, new RecordState(cur.version() + 1, false, data, now));
      }
      default -> throw new IllegalArgumentException("unknown op " + m.op());
    }
  }

  /**
   * The state an applied mutation leads to, without validation: how projections are rebuilt from
   * the event log, reproducing exactly what was decided when it arrived.
   */
  public static RecordState replay(
      CollectionCatalog catalog, Mutation m, Optional<RecordState> current, long version, Instant at) {
    return switch (m.op()) {
      case CREATE -> new RecordState(version, false,
          catalog.find(m.collection()).map(s -> withDefaults(s, m.data())).orElseGet(() -> m.data().deepCopy()), at);
      case UPDATE -> new RecordState(version, false,
          patched(current.orElseThrow(() -> new IllegalStateException("update of unknown record " + m.recordId())).data(), m.data()), at);
      case DELETE -> new RecordState(version, true, null, at);
    };
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

  /** Applies an update's fields: each present field replaces the old value; {@code null} removes it. */
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

  private static Outcome validated(CollectionSchema schema, Mutation m, ObjectNode data, RecordState next) {
    Optional<Violation> v = schema.check(data);
    if (v.isPresent()) {
      return rejected(m, ErrorCode.VALIDATION_FAILED, v.get().message(), "/data" + v.get().pointer());
    }
    return applied(m, next);
  }

  private static Outcome applied(Mutation m, RecordState next) {
    return new Outcome(MutationResult.applied(m.mutationId(), m.recordId(), next.version()), Optional.of(next));
  }

  private static Outcome rejected(Mutation m, ErrorCode code, String message, String field) {
    return new Outcome(MutationResult.rejected(m.mutationId(), m.recordId(), ErrorDetail.of(code, message, field)), Optional.empty());
  }
}
