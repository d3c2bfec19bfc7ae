package org.civicsync.server.pull;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Set;
import java.util.TreeSet;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.canonical.Digests;
import org.civicsync.server.ApiException;

/**
 * A position in one tenant's change feed: every change with a sequence number up to {@link
 * #seq()} has been delivered. Comparable, so tests can assert it never moves backwards.
 *
 * <p>On the wire it is base64url of {@code v1.<seq>.<scope>}, where {@code scope} is a short
 * digest of the tenant and the collection filter; a cursor used with another tenant or filter is
 * refused rather than silently skipping the other collections' earlier changes.
 */
public record Cursor(long seq, String scope) implements Comparable<Cursor> {
  private static final Base64.Encoder ENC = Base64.getUrlEncoder().withoutPadding();
  private static final Base64.Decoder DEC = Base64.getUrlDecoder();

  /** The start of the feed for this tenant and filter. */
  public static Cursor start(String tenantId, Set<String> collections) {
    return new Cursor(0, scope(tenantId, collections));
  }

  /** The start of one device's outcomes feed (a scope of its own, so feeds' cursors never mix). */
  public static Cursor outcomesStart(String tenantId, java.util.UUID deviceId) {
    return start(tenantId, Set.of(outcomesScope(deviceId)));
  }

  /** Decodes a cursor of one device's outcomes feed. */
  public static Cursor decodeOutcomes(String wire, String tenantId, java.util.UUID deviceId) {
    return decode(wire, tenantId, Set.of(outcomesScope(deviceId)));
  }

  private static String outcomesScope(java.util.UUID deviceId) {
    // Collection names cannot contain '#', so this never collides with a collections filter.
    return "#outcomes/" + deviceId;
  }

  /** The same scope at another position. */
  public Cursor at(long newSeq) {
    return new Cursor(newSeq, scope);
  }

  public String encode() {
    return ENC.encodeToString(("v1." + seq + "." + scope).getBytes(StandardCharsets.US_ASCII));
  }

  /**
   * Decodes a wire cursor and checks it belongs to this tenant and filter.
   *
   * @throws ApiException {@code CURSOR_INVALID}
   */
  public static Cursor decode(String wire, String tenantId, Set<String> collections) {
    String expectedScope = scope(tenantId, collections);
    String text;
    try {
      text = new String(DEC.decode(wire), StandardCharsets.US_ASCII);
    } catch (IllegalArgumentException e) {
      throw invalid("the cursor is not one this server issued");
    }
    String[] parts = text.split("\\.", -1);
    if (parts.length != 3 || !parts[0].equals("v1") || !parts[1].matches("0|[1-9][0-9]{0,17}")) {
      throw invalid("the cursor is not one this server issued");
    }
    if (!parts[2].equals(expectedScope)) {
      throw invalid("the cursor was issued for another tenant, device feed or collections filter");
    }
    return new Cursor(Long.parseLong(parts[1]), expectedScope);
  }

  @Override
  public int compareTo(Cursor o) {
    return Long.compare(seq, o.seq);
  }

  private static String scope(String tenantId, Set<String> collections) {
    String filter = String.join(",", new TreeSet<>(collections));
    return Digests.sha256Hex((tenantId + "\n" + filter).getBytes(StandardCharsets.UTF_8)).substring(0, 12);
  }

  private static ApiException invalid(String why) {
    return new ApiException(ErrorCode.CURSOR_INVALID, why + "; ask again without a cursor", "cursor");
  }
}
