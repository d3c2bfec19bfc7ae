package org.civicsync.core.validation;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;

/**
 * Rules on text that hold for every message, whatever its schema. U+0000 is refused anywhere:
 * PostgreSQL's text and jsonb types cannot store it, and a store-specific failure deep inside a
 * write is what this check keeps out.
 */
public final class TextRules {
  private TextRules() {}

  /** The first string or member name holding U+0000, as a JSON Pointer violation. */
  public static Optional<Violation> firstNul(JsonNode node) {
    return walk(node, "");
  }

  private static Optional<Violation> walk(JsonNode node, String at) {
    if (node.isTextual()) {
      return node.textValue().indexOf('\u0000') >= 0 ? Optional.of(nul(at)) : Optional.empty();
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
          return Optional.of(nul(here));
        }
        Optional<Violation> v = walk(f.getValue(), here);
        if (v.isPresent()) {
          return v;
        }
      }
    }
    return Optional.empty();
  }

  private static Violation nul(String at) {
    return new Violation(at, "text may not contain the character U+0000");
  }
}
