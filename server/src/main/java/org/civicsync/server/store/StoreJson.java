package org.civicsync.server.store;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.civicsync.contracts.Mutation;
import org.civicsync.contracts.MutationResult;
import org.civicsync.core.json.Json;

/** The JSON text forms stores keep for log entries and record data. */
public final class StoreJson {
  private StoreJson() {}

  public static String write(Object value) {
    try {
      return Json.mapper().writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("cannot serialise " + value.getClass().getSimpleName(), e);
    }
  }

  public static ObjectNode object(String json) {
    return read(json, ObjectNode.class);
  }

  public static Mutation mutation(String json) {
    return read(json, Mutation.class);
  }

  public static MutationResult result(String json) {
    return read(json, MutationResult.class);
  }

  public static org.civicsync.core.records.RecordState state(String json) {
    return read(json, org.civicsync.core.records.RecordState.class);
  }

  /** Per-field clocks as stored: a JSON object of field name to HLC string. */
  @SuppressWarnings("unchecked")
  public static java.util.Map<String, String> clocks(String json) {
    return json == null || json.isEmpty() ? java.util.Map.of() : read(json, java.util.Map.class);
  }

  /**
   * {@code json} (UTF-8) without the whitespace outside its strings: what a store whose database
   * normalises JSON with spaces (PostgreSQL's {@code jsonb} prints {@code ", "} and {@code ": "})
   * hands to the change feed, which copies it into pages as it is. Strings, escapes included, are
   * copied unchanged; safe byte by byte, since in UTF-8 every byte of a multi-byte character is
   * 0x80 or above, so none of them is a quote, a backslash or a space. The text must be valid JSON
   * (it comes from the database's own JSON type). Returns {@code json} itself when there is
   * nothing to drop.
   */
  public static byte[] compact(byte[] json) {
    int n = json.length;
    int i = 0;
    boolean inString = false;
    // Most of a row is copied in runs; the first space decides whether a copy is needed at all.
    for (; i < n; i++) {
      byte c = json[i];
      if (inString) {
        if (c == '\\') {
          i++;
        } else if (c == '"') {
          inString = false;
        }
      } else if (c == '"') {
        inString = true;
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        break;
      }
    }
    if (i >= n) {
      return json;
    }
    byte[] out = new byte[n];
    System.arraycopy(json, 0, out, 0, i);
    int w = i;
    for (i++; i < n; i++) {
      byte c = json[i];
      if (inString) {
        out[w++] = c;
        if (c == '\\') {
          out[w++] = json[++i];
        } else if (c == '"') {
          inString = false;
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        continue;
      } else {
        out[w++] = c;
        if (c == '"') {
          inString = true;
        }
      }
    }
    return java.util.Arrays.copyOf(out, w);
  }

  private static <T> T read(String json, Class<T> type) {
    try {
      return Json.mapper().readValue(json, type);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("stored " + type.getSimpleName() + " is not readable: " + e.getOriginalMessage(), e);
    }
  }
}
