package org.civicsync.core.canonical;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import org.erdtman.jcs.NumberToJSON;

/**
 * RFC 8785 canonical JSON of a Jackson tree: object members sorted by their names' UTF-16 code
 * units, no insignificant white space, strings escaped minimally, numbers in ECMAScript
 * {@code Number.prototype.toString} form (the RFC's reference serializer).
 */
public final class Jcs {
  private Jcs() {}

  /** 2^53: every integer up to it in magnitude is a double exactly. */
  private static final long EXACT = 1L << 53;

  /** The canonical form as UTF-8 bytes. */
  public static byte[] canonicalBytes(JsonNode node) {
    return canonicalString(node).getBytes(StandardCharsets.UTF_8);
  }

  /** The canonical form as a string. */
  public static String canonicalString(JsonNode node) {
    StringBuilder out = new StringBuilder(1024);
    write(node, out);
    return out.toString();
  }

  private static void write(JsonNode node, StringBuilder out) {
    switch (node.getNodeType()) {
      case OBJECT -> {
        List<Map.Entry<String, JsonNode>> members = new ArrayList<>(node.size());
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
          members.add(it.next());
        }
        // String.compareTo orders by UTF-16 code units, exactly as RFC 8785 section 3.2.3 asks.
        members.sort(Map.Entry.comparingByKey());
        out.append('{');
        for (int i = 0; i < members.size(); i++) {
          if (i > 0) {
            out.append(',');
          }
          writeString(members.get(i).getKey(), out);
          out.append(':');
          write(members.get(i).getValue(), out);
        }
        out.append('}');
      }
      case ARRAY -> {
        out.append('[');
        for (int i = 0; i < node.size(); i++) {
          if (i > 0) {
            out.append(',');
          }
          write(node.get(i), out);
        }
        out.append(']');
      }
      case STRING -> writeString(node.textValue(), out);
      case NUMBER -> {
        // An integer a double holds exactly is written as ECMAScript writes it: its digits. The
        // shortcut skips the shortest-double search for versions, counts and sequence numbers.
        if (node.isIntegralNumber() && node.canConvertToLong() && node.longValue() >= -EXACT && node.longValue() <= EXACT) {
          out.append(node.longValue());
        } else {
          out.append(number(node.doubleValue()));
        }
      }
      case BOOLEAN -> out.append(node.booleanValue() ? "true" : "false");
      case NULL -> out.append("null");
      default -> throw new IllegalArgumentException("not a JSON value: " + node.getNodeType());
    }
  }

  private static String number(double value) {
    try {
      return NumberToJSON.serializeNumber(value);
    } catch (IOException e) {
      // Thrown only for NaN and infinities, which JSON cannot carry in the first place.
      throw new IllegalArgumentException("number not representable in JSON: " + value, e);
    }
  }

  private static void writeString(String s, StringBuilder out) {
    out.append('"');
    int plain = 0;
    while (plain < s.length() && s.charAt(plain) >= 0x20 && s.charAt(plain) != '"' && s.charAt(plain) != '\\') {
      plain++;
    }
    // Most strings need no escape: one append for the run before the first one that does (the
    // whole string, usually, which StringBuilder copies in one go).
    if (plain == s.length()) {
      out.append(s).append('"');
      return;
    }
    out.append(s, 0, plain);
    for (int i = plain; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) {
            out.append("\\u00").append(Character.forDigit(c >> 4, 16)).append(Character.forDigit(c & 0xF, 16));
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
