package org.civicsync.server.app;

import io.javalin.http.Context;
import java.io.IOException;
import java.io.InputStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.server.ApiException;

/**
 * Resumable push bodies (protocol.md, "Resumable uploads"). A push that names its body by {@code
 * Upload-Key} (the base64url SHA-256 of the whole body as sent) and {@code Upload-Length} has
 * whatever part of it arrived kept when the connection breaks, so that the device, once it has
 * asked {@code HEAD /v1/sync/uploads/{key}} how far the server got, sends only the rest with
 * {@code Upload-Offset}. On 2G a reset in the middle of a batch otherwise costs every byte of it
 * that had already crossed.
 *
 * <p>A named body is received into a buffer the server keeps, so a question about it is answered
 * with the bytes read so far even while the request that brought them is still waiting on its
 * connection: on a mobile network a connection that died silently may keep the server reading for
 * a long time, and the device asks (over a new connection) long before. A resumed request takes the
 * prefix it builds on from that buffer; whatever the old request does afterwards touches only its
 * own buffer. A body that arrived whole is kept too: a device whose answer was lost resumes it at
 * its end, sending no bytes, and is answered (as a replay) from it. The parts are held in memory, at most one per device (a device sends one push at a
 * time; a new key replaces its older part), for {@link #MAX_AGE} and within {@link #MAX_HELD_BYTES}
 * in all (counting each body's whole length), the oldest dropped first. A part that is gone only costs the device the whole body again:
 * the server then answers offset 0. Nothing is decided on a part: the assembled body must hash to
 * its key before it is read as a push, and then it is checked like any other.
 *
 * <p>Thread-safe.
 */
final class ResumableUploads {
  /** How long a part is kept after its last byte arrived. */
  static final Duration MAX_AGE = Duration.ofMinutes(15);
  /** All parts together, at most. */
  static final long MAX_HELD_BYTES = 64L << 20;
  static final String KEY = "Upload-Key";
  static final String LENGTH = "Upload-Length";
  static final String OFFSET = "Upload-Offset";
  /** On a push answer: how fast this request's part of the body arrived, in bytes per second. */
  static final String RATE = "Upload-Rate";
  /** Fewer bytes than this, timed, say little about a link's rate. */
  private static final int TIMED_AT_LEAST = 2048;
  private static final Pattern KEY_FORM = Pattern.compile("[A-Za-z0-9_-]{43}");
  private static final Pattern NUMBER = Pattern.compile("[0-9]{1,18}");

  private record Owner(String tenantId, UUID deviceId) {}

  /**
   * One body being received or left incomplete: its first {@link #filled} bytes are in {@link
   * #bytes}, which is the body's whole length. Only the request reading it writes to it, and only
   * beyond {@code filled}; everyone else reads below it.
   */
  private static final class Part {
    final String key;
    final byte[] bytes;
    volatile int filled;
    volatile Instant at;

    Part(String key, byte[] bytes, int filled, Instant at) {
      this.key = key;
      this.bytes = bytes;
      this.filled = filled;
      this.at = at;
    }
  }

  private final long maxBodyBytes;
  private final Clock clock;
  /** In the order parts were started (a device's new part goes last), oldest first. */
  private final LinkedHashMap<Owner, Part> parts = new LinkedHashMap<>();
  private long held;

  ResumableUploads(long maxBodyBytes, Clock clock) {
    this.maxBodyBytes = maxBodyBytes;
    this.clock = clock;
  }

  /** Whether the request names its body for resumption. */
  static boolean named(Context ctx) {
    return ctx.header(KEY) != null;
  }

  /** How many bytes of the body named {@code key} the server holds for this device (0: none). */
  synchronized long offset(String tenantId, UUID deviceId, String key) {
    checkKey(key);
    expire();
    Part p = parts.get(new Owner(tenantId, deviceId));
    return p != null && p.key.equals(key) ? p.filled : 0;
  }

  /**
   * Reads this request's part of a named body and returns the whole body once it is complete.
   *
   * @throws ApiException {@code UPLOAD_MISMATCH} (with the offset the server holds in {@code
   *     Upload-Offset}) when the request starts past what the server holds, ends short of the
   *     body, or completes a body whose digest is not its key; {@code INVALID_REQUEST} for
   *     malformed headers; {@code PAYLOAD_TOO_LARGE} for a body over the limit
   */
  byte[] receive(Context ctx, String tenantId, UUID deviceId) {
    try {
      return read(ctx, tenantId, deviceId);
    } catch (ApiException refused) {
      throw drained(ctx, refused);
    }
  }

  private byte[] read(Context ctx, String tenantId, UUID deviceId) {
    String key = ctx.header(KEY);
    checkKey(key);
    long length = number(ctx, LENGTH).orElseThrow(() -> new ApiException(ErrorCode.INVALID_REQUEST,
        "a push with " + KEY + " needs " + LENGTH + ", the whole body's size in bytes", LENGTH));
    long offset = number(ctx, OFFSET).orElse(0L);
    if (length > maxBodyBytes) {
      throw new ApiException(ErrorCode.PAYLOAD_TOO_LARGE, "the body is larger than " + maxBodyBytes + " bytes");
    }
    if (offset > length) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, OFFSET + " is past " + LENGTH, OFFSET);
    }
    Owner owner = new Owner(tenantId, deviceId);
    byte[] body = new byte[(int) length];
    Part mine = new Part(key, body, (int) offset, clock.instant());
    synchronized (this) {
      expire();
      Part p = parts.get(owner);
      long have = p != null && p.key.equals(key) && p.bytes.length == length ? p.filled : 0;
      if (offset > have) {
        throw mismatch(ctx, have, "the server holds " + have + " bytes of this body, not " + offset);
      }
      if (offset > 0) {
        System.arraycopy(p.bytes, 0, body, 0, (int) offset);
      }
      hold(owner, mine);
    }
    int filled = (int) offset;
    boolean broken = false;
    // The body's arrival, timed from the end of its first read (which may have come with the
    // request's head) to the end of its last: what the link carried in that time.
    long firstAt = 0;
    long lastAt = 0;
    int firstFilled = 0;
    try {
      InputStream in = ctx.bodyInputStream();
      for (int n; filled < body.length && (n = in.read(body, filled, body.length - filled)) > 0; ) {
        filled += n;
        mine.filled = filled;
        mine.at = clock.instant(); // a slow upload is not an abandoned one
        lastAt = System.nanoTime();
        if (firstAt == 0) {
          firstAt = lastAt;
          firstFilled = filled;
        }
      }
      if (filled == body.length && in.read() != -1) {
        release(owner, mine);
        throw new ApiException(ErrorCode.INVALID_REQUEST, "the body runs past " + LENGTH + " (" + length + ")", LENGTH);
      }
    } catch (IOException e) {
      broken = true; // the connection broke: what came stays held
      Bodies.clientGone(ctx);
    }
    if (filled < body.length) {
      mine.at = clock.instant();
      throw mismatch(ctx, filled, broken ? "the connection broke after " + filled + " bytes of " + length
          : "the body ended after " + filled + " bytes of " + length);
    }
    if (!key.equals(org.civicsync.core.canonical.Digests.sha256Base64Url(body))) {
      release(owner, mine);
      throw mismatch(ctx, 0, "the assembled body's SHA-256 is not its " + KEY + "; send it again from the start");
    }
    if (filled - firstFilled >= TIMED_AT_LEAST && lastAt > firstAt) {
      ctx.header(RATE, Long.toString((long) ((filled - firstFilled) * 1e9 / (lastAt - firstAt))));
    }
    // Kept whole, as the device's part, until its next body or the age limit: when the answer to
    // this push is lost on the way back (the commonest loss on a mobile network, and on 2G a
    // batch takes seconds to send), the device asks, is told it all arrived, and sends none of it
    // again to be answered.
    mine.at = clock.instant();
    return body;
  }

  /** Makes {@code part} the device's one part (under the lock), within the bytes allowed in all. */
  private void hold(Owner owner, Part part) {
    drop(owner);
    parts.put(owner, part);
    held += part.bytes.length;
    for (Iterator<Map.Entry<Owner, Part>> it = parts.entrySet().iterator(); held > MAX_HELD_BYTES && it.hasNext(); ) {
      Map.Entry<Owner, Part> oldest = it.next();
      if (oldest.getValue() != part) {
        held -= oldest.getValue().bytes.length;
        it.remove();
      }
    }
  }

  /** Lets a completed (or refused) body go, unless another request has taken the device's place since. */
  private synchronized void release(Owner owner, Part part) {
    if (parts.get(owner) == part) {
      drop(owner);
    }
  }

  private void drop(Owner owner) {
    Part old = parts.remove(owner);
    if (old != null) {
      held -= old.bytes.length;
    }
  }

  private void expire() {
    Instant cutoff = clock.instant().minus(MAX_AGE);
    parts.values().removeIf(p -> {
      boolean old = p.at.isBefore(cutoff);
      if (old) {
        held -= p.bytes.length;
      }
      return old;
    });
  }

  /**
   * Reads and discards what is left of a refused body (up to the size limit) before the error is
   * answered, as {@code Bodies} does: otherwise the connection closes under a client still sending,
   * or one that sends its next request on it, and neither reads why.
   */
  private ApiException drained(Context ctx, ApiException e) {
    return Bodies.drained(ctx.bodyInputStream(), maxBodyBytes, e);
  }

  private static ApiException mismatch(Context ctx, long have, String message) {
    ctx.header(OFFSET, Long.toString(have));
    return new ApiException(ErrorCode.UPLOAD_MISMATCH, message + " (resume at " + have + ")", OFFSET);
  }

  private static void checkKey(String key) {
    if (key == null || !KEY_FORM.matcher(key).matches()) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, KEY + " must be the base64url SHA-256 of the body (43 characters)", KEY);
    }
  }

  private static Optional<Long> number(Context ctx, String header) {
    String v = ctx.header(header);
    if (v == null) {
      return Optional.empty();
    }
    if (!NUMBER.matcher(v.trim()).matches()) {
      throw new ApiException(ErrorCode.INVALID_REQUEST, header + " must be a number of bytes", header);
    }
    return Optional.of(Long.parseLong(v.trim()));
  }
}
