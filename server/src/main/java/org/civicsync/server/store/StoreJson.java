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
   * {@code json} without the whitespace outside its strings: what a store whose database
   * normalises JSON with spaces (PostgreSQL's {@code jsonb} prints {@code ", "} and {@code ": "})
   * hands to the change feed, which splices it into pages as it is. One pass over the characters;
   * strings, escapes included, are copied unchanged. The text must be valid JSON (it comes from the
   * database's own JSON type).
   */
  public static String compact(String json) {
    StringBuilder out = null; // only once there is something to drop
    int run = 0; // start of the characters not yet copied
    boolean inString = false;
    for (int i = 0; i < json.length(); i++) {
      char c = json.charAt(i);
      if (inString) {
        if (c == '\\') {
          i++;
        } else if (c == '"') {
          inString = false;
        }
      } else if (c == '"') {
        inString = true;
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        if (out == null) {
          out = new StringBuilder(json.length());
        }
        out.append(json, run, i);
        run = i + 1;
      }
    }
    return out == null ? json : out.append(json, run, json.length()).toString();
  }

  /**
   * The same as {@link #compact(String)} over UTF-8 bytes, for a store that hands the feed its
   * JSON as it came from the database. Safe byte by byte: in UTF-8 every byte of a multi-byte
   * character is 0x80 or above, so none of them is a quote, a backslash or a space. Returns
   * {@code json} itself when there is nothing to drop.
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
