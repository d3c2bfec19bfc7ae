package org.civicsync.server.pull;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Set;
import java.util.TreeSet;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.canonical.Digests;
import org.civicsync.server.ApiException;

/**
 * A position in one tenant's change feed as one device sees it: every change visible to it with a
 * sequence number up to {@link #seq()} has been delivered. Comparable by seq, so tests can assert
 * it never moves backwards.
 *
 * <p>On the wire it is base64url of {@code v2.<seq>.<scope>.<readable>.<snap>.<prev>.<catchUp>}:
 * {@code scope} is a short digest of the tenant and the collection filter (a cursor used with
 * another tenant or filter is refused rather than silently skipping the other collections'
 * earlier changes); {@code readable} a digest of the collections the caller may read;
 * {@code snap} the id of the org-unit set the device has been served ({@code *} for everything),
 * {@code prev} the set before it ({@code -} for none), and {@code catchUp} {@code -} or
 * {@code <pos>~<target>} while a scope change is being caught up.
 */
public record Cursor(long seq, String scope, String readable, String snap, String prev, long catchUpPos, String catchUpTarget)
    implements Comparable<Cursor> {
  private static final Base64.Encoder ENC = Base64.getUrlEncoder().withoutPadding();
  private static final Base64.Decoder DEC = Base64.getUrlDecoder();
  /** The snapshot id of an unrestricted scope. */
  public static final String EVERYTHING = "*";
  static final String NONE = "-";

  /** The start of the feed for this tenant and filter. */
  public static Cursor start(String tenantId, Set<String> collections) {
    return new Cursor(0, scope(tenantId, collections), NONE, EVERYTHING, NONE, -1, NONE);
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

  /** The same cursor at another position. */
  public Cursor at(long newSeq) {
    return new Cursor(newSeq, scope, readable, snap, prev, catchUpPos, catchUpTarget);
  }

  Cursor withReadable(String newReadable) {
    return new Cursor(seq, scope, newReadable, snap, prev, catchUpPos, catchUpTarget);
  }

  Cursor catchingUp(long pos, String target) {
    return new Cursor(seq, scope, readable, snap, prev, pos, target);
  }

  Cursor served(String newSnap, String newPrev) {
    return new Cursor(seq, scope, readable, newSnap, newPrev, -1, NONE);
  }

  boolean inCatchUp() {
    return catchUpPos >= 0;
  }

  public String encode() {
    String cu = catchUpPos < 0 ? NONE : catchUpPos + "~" + catchUpTarget;
    return ENC.encodeToString(String.join(".", "v2", Long.toString(seq), scope, readable, snap, prev, cu)
        .getBytes(StandardCharsets.US_ASCII));
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
    String[] p = text.split("\\.", -1);
    String id = "[0-9a-f]{16}|\\*|-";
    if (p.length != 7 || !p[0].equals("v2") || !p[1].matches("0|[1-9][0-9]{0,17}") || !p[3].matches("[0-9a-f]{12}|-")
        || !p[4].matches(id) || !p[5].matches(id) || !p[6].matches("-|(0|[1-9][0-9]{0,17})~([0-9a-f]{16}|\\*)")) {
      throw invalid("the cursor is not one this server issued");
    }
    if (!p[2].equals(expectedScope)) {
      throw invalid("the cursor was issued for another tenant, device feed or collections filter");
    }
    long pos = -1;
    String target = NONE;
    if (!p[6].equals(NONE)) {
      pos = Long.parseLong(p[6].substring(0, p[6].indexOf('~')));
      target = p[6].substring(p[6].indexOf('~') + 1);
    }
    return new Cursor(Long.parseLong(p[1]), expectedScope, p[3], p[4], p[5], pos, target);
  }

  @Override
  public int compareTo(Cursor o) {
    return Long.compare(seq, o.seq);
  }

  private static String scope(String tenantId, Set<String> collections) {
    String filter = String.join(",", new TreeSet<>(collections));
    return Digests.sha256Hex((tenantId + "\n" + filter).getBytes(StandardCharsets.UTF_8)).substring(0, 12);
  }

  /** A short digest of the collections a caller may read. */
  static String readable(Set<String> collections) {
    return Digests.sha256Hex(String.join(",", new TreeSet<>(collections)).getBytes(StandardCharsets.UTF_8)).substring(0, 12);
  }

  /** The id of a set of org units (content-derived, so equal sets share one). */
  static String snapshotId(String tenantId, Set<String> units) {
    return Digests.sha256Hex((tenantId + "\n" + String.join("\n", new TreeSet<>(units))).getBytes(StandardCharsets.UTF_8))
        .substring(0, 16);
  }

  static ApiException invalid(String why) {
    return new ApiException(ErrorCode.CURSOR_INVALID, why + "; ask again without a cursor", "cursor");
  }
}
