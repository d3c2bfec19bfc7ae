package org.civicsync.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import org.civicsync.client.outbox.OutboxEntry;
import org.civicsync.contracts.Mutation;
import org.civicsync.core.collections.CollectionSchema;
import org.civicsync.core.json.Json;
import org.civicsync.core.records.MutationRules;

/**
 * The local view as the server's state with the device's unconfirmed changes on top. Entries are
 * replayed in deviceSeq order; edits that wait for an earlier change of the same record (no entry
 * yet) are kept as a difference and re-applied last.
 */
final class Rebase {
  private Rebase() {}

  /** Local edits not carried by any entry: nothing, a delete, a field patch, or whole new data. */
  sealed interface Diff {}

  record None() implements Diff {}

  record Delete() implements Diff {}

  record Patch(ObjectNode fields) implements Diff {}

  record Replace(ObjectNode data) implements Diff {}

  static ObjectNode apply(Optional<CollectionSchema> schema, ObjectNode current, Mutation m) {
    return switch (m.op()) {
      case CREATE -> schema.map(s -> MutationRules.withDefaults(s, m.data())).orElse(m.data().deepCopy());
      case UPDATE -> current == null ? null : MutationRules.patched(current, m.data());
      case DELETE -> null;
    };
  }

  /** The server data with these entries' changes applied in order. */
  static ObjectNode replay(Optional<CollectionSchema> schema, ObjectNode server, List<OutboxEntry> entries) {
    ObjectNode x = server == null ? null : server.deepCopy();
    for (OutboxEntry e : entries) {
      x = apply(schema, x, e.mutation());
    }
    return x;
  }

  /** What turns {@code from} into {@code to}. */
  static Diff diff(ObjectNode from, ObjectNode to) {
    if (Objects.equals(from, to)) {
      return new None();
    }
    if (to == null) {
      return new Delete();
    }
    if (from == null) {
      return new Replace(to.deepCopy());
    }
    ObjectNode patch = Json.mapper().createObjectNode();
    for (Iterator<Map.Entry<String, JsonNode>> it = to.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> f = it.next();
      if (!f.getValue().equals(from.get(f.getKey()))) {
        patch.set(f.getKey(), f.getValue().deepCopy());
      }
    }
    for (Iterator<String> it = from.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!to.has(name)) {
        patch.putNull(name);
      }
    }
    return new Patch(patch);
  }

  static ObjectNode applyDiff(ObjectNode x, Diff d) {
    if (d instanceof Delete) {
      return null;
    }
    if (d instanceof Replace r) {
      return r.data().deepCopy();
    }
    if (d instanceof Patch p) {
      return x == null ? null : MutationRules.patched(x, p.fields());
    }
    return x == null ? null : x.deepCopy();
  }
}
