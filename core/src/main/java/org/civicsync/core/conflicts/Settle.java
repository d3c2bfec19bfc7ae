package org.civicsync.core.conflicts;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.canonical.Jcs;

/**
 * Settles an update field by field. With {@code base} equal to {@code server} (a current change)
 * this is plain application plus the field kinds' own rules (monotonic moves, append-only
 * arrays); with an older base it is the three-way merge each field's rule declares.
 */
public final class Settle {
  private Settle() {}

  /**
   * @param base the record's data at the version the client saw
   * @param server the record's data now
   * @param serverHlc per-field clock of the last write to each field on the server
   * @param patch the client's changed fields ({@code null} removes a field)
   * @param clientHlc the change's clock
   * @param stale whether the server's version has moved past the client's base
   */
  public static Settlement update(ConflictPolicy policy, ObjectNode base, ObjectNode server, Map<String, String> serverHlc,
      ObjectNode patch, String clientHlc, boolean stale) {
    ObjectNode result = server.deepCopy();
    Map<String, String> hlc = new HashMap<>(serverHlc);
    List<String> overridden = new ArrayList<>();
    List<String> conflicts = new ArrayList<>();
    boolean combined = stale && !same(base, server);
    for (Iterator<Map.Entry<String, JsonNode>> it = patch.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      String f = e.getKey();
      JsonNode bv = base.get(f);
      JsonNode sv = server.get(f);
      JsonNode cv = e.getValue().isNull() ? null : e.getValue();
      FieldRule rule = policy.rule(f);
      if (same(bv, cv)) {
        continue; // the client sent back what it saw: no change of its own to this field
      }
      boolean serverChanged = !same(bv, sv);
      if (rule instanceof FieldRule.AppendOnly) {
        ArrayNode merged = appendOnly(bv, sv, cv, serverHlc.getOrDefault(f, ""), clientHlc);
        if (cv == null || !same(merged, cv)) {
          combined = true;
        }
        result.set(f, merged);
        stamp(hlc, f, clientHlc);
      } else if (rule instanceof FieldRule.Counter) {
        if (isNumber(bv) && isNumber(sv) && isNumber(cv) && cv != null && serverChanged) {
          BigDecimal delta = cv.decimalValue().subtract(bv == null ? BigDecimal.ZERO : bv.decimalValue());
          BigDecimal sum = (sv == null ? BigDecimal.ZERO : sv.decimalValue()).add(delta);
          result.set(f, number(sum));
          combined = true;
        } else {
          set(result, f, cv);
        }
        stamp(hlc, f, clientHlc);
      } else if (rule instanceof FieldRule.Monotonic m) {
        boolean fromNothing = bv == null && cv != null && cv.isTextual() && m.isInitial(cv.asText());
        if (!fromNothing && (cv == null || !cv.isTextual() || bv == null || !bv.isTextual() || !m.allows(bv.asText(), cv.asText()))) {
          return new Settlement.Reject(ErrorCode.INVALID_TRANSITION,
              f + " may not move from " + text(bv) + " to " + text(cv), "/data/" + f);
        }
        if (same(sv, cv)) {
          continue;
        }
        if ((sv == null && fromNothing) || (sv != null && sv.isTextual() && m.allows(sv.asText(), cv.asText()))) {
          set(result, f, cv);
          stamp(hlc, f, clientHlc);
        } else {
          // The server has already moved past (or away from) where the client wanted to go.
          overridden.add(f);
        }
      } else {
        PolicyName p = ((FieldRule.ByPolicy) rule).policy();
        if (stale && p == PolicyName.MANUAL) {
          conflicts.add(f);
        } else if (!serverChanged || same(sv, cv) || p == PolicyName.CLIENT_WINS
            || (p == PolicyName.LAST_WRITER_WINS && clientHlc.compareTo(serverHlc.getOrDefault(f, "")) > 0)) {
          set(result, f, cv);
          stamp(hlc, f, clientHlc);
        } else if (p == PolicyName.MERGE) {
          conflicts.add(f);
        } else {
          // serverWins, or lastWriterWins with the server's write the later one.
          overridden.add(f);
        }
      }
    }
    if (!conflicts.isEmpty()) {
      return new Settlement.Park(conflicts);
    }
    return new Settlement.Apply(result, hlc, overridden, combined || !overridden.isEmpty());
  }

  /** Whether a stale change must park without a field-level look: the collection is manual. */
  public static boolean parksWhole(ConflictPolicy policy) {
    return policy.defaultPolicy() == PolicyName.MANUAL && policy.fields().isEmpty();
  }

  /**
   * The union of an append-only array: the server's items, then the client's additions since the
   * base; when the client's change is the earlier one by clock, its additions come before the
   * server's.
   */
  static ArrayNode appendOnly(JsonNode base, JsonNode server, JsonNode client, String serverHlc, String clientHlc) {
    List<JsonNode> b = items(base);
    List<JsonNode> s = items(server);
    List<JsonNode> c = items(client);
    Set<String> known = new LinkedHashSet<>();
    b.forEach(x -> known.add(Jcs.canonicalString(x)));
    List<JsonNode> serverAdds = new ArrayList<>();
    for (JsonNode x : s) {
      if (known.add(Jcs.canonicalString(x))) {
        serverAdds.add(x);
      }
    }
    List<JsonNode> clientAdds = new ArrayList<>();
    for (JsonNode x : c) {
      if (known.add(Jcs.canonicalString(x))) {
        clientAdds.add(x);
      }
    }
    ArrayNode out = JsonNodeFactory.instance.arrayNode();
    // Items of the base stay, even if a side dropped them: nothing leaves an append-only array.
    Set<String> kept = new LinkedHashSet<>();
    for (JsonNode x : s) {
      if (!containsCanon(serverAdds, x) && kept.add(Jcs.canonicalString(x))) {
        out.add(x);
      }
    }
    for (JsonNode x : b) {
      if (kept.add(Jcs.canonicalString(x))) {
        out.add(x);
      }
    }
    boolean clientFirst = clientHlc.compareTo(serverHlc) < 0;
    (clientFirst ? clientAdds : serverAdds).forEach(out::add);
    (clientFirst ? serverAdds : clientAdds).forEach(out::add);
    return out;
  }

  private static boolean containsCanon(List<JsonNode> list, JsonNode x) {
    String k = Jcs.canonicalString(x);
    return list.stream().anyMatch(y -> Jcs.canonicalString(y).equals(k));
  }

  private static List<JsonNode> items(JsonNode a) {
    List<JsonNode> out = new ArrayList<>();
    if (a != null && a.isArray()) {
      a.forEach(out::add);
    }
    return out;
  }

  /** JSON value equality as canonical forms ({@code 1} equals {@code 1.0}); absent equals absent. */
  public static boolean same(JsonNode a, JsonNode b) {
    if (a == null || a.isMissingNode()) {
      return b == null || b.isMissingNode();
    }
    if (b == null || b.isMissingNode()) {
      return false;
    }
    return Jcs.canonicalString(a).equals(Jcs.canonicalString(b));
  }

  /** Writes the client's clock for a field, never moving the field's clock backwards. */
  private static void stamp(Map<String, String> hlc, String f, String clientHlc) {
    hlc.merge(f, clientHlc, Settle::max);
  }

  private static void set(ObjectNode o, String f, JsonNode v) {
    if (v == null) {
      o.remove(f);
    } else {
      o.set(f, v.deepCopy());
    }
  }

  private static boolean isNumber(JsonNode n) {
    return n == null || n.isNumber();
  }

  private static JsonNode number(BigDecimal d) {
    BigDecimal s = d.stripTrailingZeros();
    if (s.scale() <= 0 && s.abs().compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) < 0) {
      return JsonNodeFactory.instance.numberNode(s.longValueExact());
    }
    return JsonNodeFactory.instance.numberNode(d.doubleValue());
  }

  private static String max(String a, String b) {
    return b == null || a.compareTo(b) >= 0 ? a : b;
  }

  private static String text(JsonNode n) {
    return n == null ? "(nothing)" : n.toString();
  }
}
