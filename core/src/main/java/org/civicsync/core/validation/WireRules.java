package org.civicsync.core.validation;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;

/**
 * Rules every message obeys whatever its schema: the I-JSON profile (RFC 7493) that RFC 8785
 * canonicalization assumes, plus what every store can hold.
 *
 * <ul>
 *   <li>no U+0000 in any string or member name (PostgreSQL text and jsonb cannot store it);
 *   <li>numbers are finite doubles ({@code 1e400} is not), and integers lie within ±(2^53−1),
 *       the range a double — and so JavaScript and the canonical form — holds exactly. Two
 *       larger integers could otherwise share one canonical form and pass as a replay of each
 *       other.
 * </ul>
 */
public final class WireRules {
  /** The largest integer an IEEE double holds exactly, with all its neighbours. */
  public static final long MAX_SAFE_INTEGER = 9_007_199_254_740_991L;

  private WireRules() {}

  /** The first place that breaks these rules, as a JSON Pointer violation. */
  public static Optional<Violation> firstViolation(JsonNode node) {
    return walk(node, "");
  }

  private static Optional<Violation> walk(JsonNode node, String at) {
    if (node.isTextual()) {
      return node.textValue().indexOf('\u0000') >= 0 ? nul(at) : Optional.empty();
    }
    if (node.isNumber()) {
      return number(node, at);
    }
    if (node.isArray()) {
      for (int i = 0; i < node.size(); i++) {
        Optional<Violation> v = walk(node.get(i), at + "/" + i);
        if (v.isPresent()) {
          return v;
        }
      }
    } else if (node.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        Map.Entry<String, JsonNode> f = it.next();
        String here = at + "/" + f.getKey().replace("~", "~0").replace("/", "~1");
        if (f.getKey().indexOf('\u0000') >= 0) {
          return nul(here);
        }
        Optional<Violation> v = walk(f.getValue(), here);
        if (v.isPresent()) {
          return v;
        }
      }
    }
    return Optional.empty();
  }

  private static Optional<Violation> number(JsonNode n, String at) {
    if (n.isIntegralNumber()) {
      if (!n.canConvertToLong() || Math.abs(n.longValue()) > MAX_SAFE_INTEGER) {
        return Optional.of(new Violation(at,
            "integers must lie within ±9007199254740991 to survive JSON exactly; send larger ones as strings"));
      }
      return Optional.empty();
    }
    double d = n.doubleValue();
    if (Double.isNaN(d) || Double.isInfinite(d)) {
      return Optional.of(new Violation(at, "the number is outside the range of a double (IEEE 754 binary64)"));
    }
    return Optional.empty();
  }

  private static Optional<Violation> nul(String at) {
    return Optional.of(new Violation(at, "text may not contain the character U+0000"));
  }
}
