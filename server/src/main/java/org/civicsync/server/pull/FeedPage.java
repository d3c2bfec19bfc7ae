package org.civicsync.server.pull;

import com.fasterxml.jackson.core.io.JsonStringEncoder;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.civicsync.contracts.Change;
import org.civicsync.contracts.ChangeOp;
import org.civicsync.contracts.PullResponse;
import org.civicsync.server.store.StoreJson;

/**
 * One page of the change feed as it goes on the wire: {@link #writeTo} writes exactly the bytes the
 * wire mapper writes for the {@link PullResponse} it stands for ({@link #toResponse}), but each
 * change's data is the stored JSON's bytes, copied into the page as they are instead of being parsed
 * into a tree and written out again.
 *
 * @param hasMore see {@link PullResponse#hasMore()}
 */
public record FeedPage(List<FeedPage.FeedChange> changes, String cursor, boolean hasMore) {
  public FeedPage {
    changes = List.copyOf(changes);
  }

  /**
   * A {@link Change} whose data is compact JSON in UTF-8 (not copied, and compared by identity);
   * {@code null} for a delete or a remove.
   */
  public record FeedChange(String collection, UUID recordId, long version, ChangeOp op, byte[] dataUtf8, Instant updatedAt) {
    Change toChange() {
      return new Change(collection, recordId, version, op,
          dataUtf8 == null ? null : StoreJson.object(new String(dataUtf8, StandardCharsets.UTF_8)), updatedAt);
    }
  }

  /**
   * Writes this page as JSON to {@code out} (and closes it, as the mapper does): the same bytes as
   * serialising {@link #toResponse()} with the wire mapper. Written as bytes by hand: through a
   * JSON generator each record's data went from UTF-8 to a {@code String} and back, and the
   * generator's reflective serialisers before that were a quarter of a pull's server time.
   */
  public void writeTo(OutputStream out) throws IOException {
    try (out) {
      PageBytes b = new PageBytes(out);
      Map<String, byte[]> quoted = new HashMap<>();
      b.ascii("{\"changes\":[");
      boolean first = true;
      for (FeedChange c : changes) {
        b.ascii(first ? "{\"collection\":" : ",{\"collection\":");
        first = false;
        b.bytes(quoted.computeIfAbsent(c.collection(), FeedPage::quoted));
        b.ascii(",\"recordId\":\"");
        b.uuid(c.recordId());
        b.ascii("\",\"version\":");
        b.ascii(Long.toString(c.version()));
        b.ascii(",\"op\":\"");
        b.ascii(c.op().wire());
        b.ascii("\"");
        if (c.dataUtf8() != null) {
          b.ascii(",\"data\":");
          b.bytes(c.dataUtf8());
        }
        if (c.updatedAt() != null) {
          b.ascii(",\"updatedAt\":\"");
          b.instant(c.updatedAt());
          b.ascii("\"");
        }
        b.ascii("}");
      }
      b.ascii("],\"cursor\":");
      b.bytes(quoted(cursor));
      b.ascii(hasMore ? ",\"hasMore\":true}" : ",\"hasMore\":false}");
      b.flush();
    }
  }

  /** A string as the wire mapper writes it: quoted, escaped as Jackson escapes, in UTF-8. */
  private static byte[] quoted(String s) {
    byte[] inner = JsonStringEncoder.getInstance().quoteAsUTF8(s);
    byte[] q = new byte[inner.length + 2];
    q[0] = '"';
    System.arraycopy(inner, 0, q, 1, inner.length);
    q[q.length - 1] = '"';
    return q;
  }

  /** The same page with each change's data parsed. */
  public PullResponse toResponse() {
    return new PullResponse(changes.stream().map(FeedChange::toChange).toList(), cursor, hasMore);
  }

  /** A buffer in front of the response stream: a page is written in pieces of up to 32 KiB. */
  static final class PageBytes {
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);
    private final OutputStream out;
    private final byte[] buf = new byte[32 * 1024];
    private int pos;

    PageBytes(OutputStream out) {
      this.out = out;
    }

    void ascii(String s) throws IOException {
      int n = s.length();
      if (n > buf.length) {
        bytes(s.getBytes(StandardCharsets.US_ASCII));
        return;
      }
      room(n);
      for (int i = 0; i < n; i++) {
        buf[pos++] = (byte) s.charAt(i);
      }
    }

    void bytes(byte[] b) throws IOException {
      if (b.length > buf.length) {
        flush();
        out.write(b);
        return;
      }
      room(b.length);
      System.arraycopy(b, 0, buf, pos, b.length);
      pos += b.length;
    }

    /** As {@link UUID#toString()}: lower-case hex, 8-4-4-4-12. */
    void uuid(UUID u) throws IOException {
      room(36);
      long hi = u.getMostSignificantBits();
      long lo = u.getLeastSignificantBits();
      hex(hi >>> 32, 8);
      buf[pos++] = '-';
      hex(hi >>> 16, 4);
      buf[pos++] = '-';
      hex(hi, 4);
      buf[pos++] = '-';
      hex(lo >>> 48, 4);
      buf[pos++] = '-';
      hex(lo, 12);
    }

    private void hex(long v, int digits) {
      for (int i = digits - 1; i >= 0; i--) {
        buf[pos + i] = HEX[(int) (v & 0xF)];
        v >>>= 4;
      }
      pos += digits;
    }

    /**
     * As {@link DateTimeFormatter#ISO_INSTANT}: seconds always, the fraction in as many groups of
     * three digits as it needs. Years outside 0000–9999 (never a stored record's) go through the
     * formatter.
     */
    void instant(Instant at) throws IOException {
      long secs = at.getEpochSecond();
      LocalDate day = LocalDate.ofEpochDay(Math.floorDiv(secs, 86_400));
      if (day.getYear() < 0 || day.getYear() > 9999) {
        ascii(DateTimeFormatter.ISO_INSTANT.format(at));
        return;
      }
      room(30);
      int inDay = (int) Math.floorMod(secs, 86_400);
      digits(day.getYear(), 4);
      buf[pos++] = '-';
      digits(day.getMonthValue(), 2);
      buf[pos++] = '-';
      digits(day.getDayOfMonth(), 2);
      buf[pos++] = 'T';
      digits(inDay / 3600, 2);
      buf[pos++] = ':';
      digits(inDay / 60 % 60, 2);
      buf[pos++] = ':';
      digits(inDay % 60, 2);
      int nanos = at.getNano();
      if (nanos != 0) {
        buf[pos++] = '.';
        if (nanos % 1_000_000 == 0) {
          digits(nanos / 1_000_000, 3);
        } else if (nanos % 1_000 == 0) {
          digits(nanos / 1_000, 6);
        } else {
          digits(nanos, 9);
        }
      }
      buf[pos++] = 'Z';
    }

    private void digits(int v, int width) {
      for (int i = width - 1; i >= 0; i--) {
        buf[pos + i] = (byte) ('0' + v % 10);
        v /= 10;
      }
      pos += width;
    }

    private void room(int n) throws IOException {
      if (pos + n > buf.length) {
        flush();
      }
    }

    void flush() throws IOException {
      if (pos > 0) {
        out.write(buf, 0, pos);
        pos = 0;
      }
    }
  }
}
