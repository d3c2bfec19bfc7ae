package org.civicsync.testing.link;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

/**
 * Just enough HTTP/1.1 (RFC 9112) to find where each message on a stream ends, so that faults can
 * be applied per request. Bytes are never rewritten: what is read is what is forwarded.
 */
final class HttpWire {
  /** Longer heads are taken as "not HTTP": no client of ours sends such heads. */
  static final int MAX_HEAD = 64 * 1024;

  private static final int MAX_LINE = 8 * 1024;

  private HttpWire() {}

  /** Where bytes go; implementations may block (pacing) and may abort the connection. */
  @FunctionalInterface
  interface Sink {
    void accept(byte[] b, int off, int len) throws IOException, InterruptedException;

    default void accept(byte[] b) throws IOException, InterruptedException {
      accept(b, 0, b.length);
    }
  }

  static final Sink DISCARD = (b, off, len) -> {};

  /** The stream does not frame as HTTP from here on; forward the rest as plain bytes. */
  static final class Malformed extends IOException {
    private static final long serialVersionUID = 1L;

    Malformed(String message) {
      super(message);
    }
  }

  /** How a message's body is delimited. */
  enum Framing {
    /** No body. */
    NONE,
    /** {@code Content-Length} bytes. */
    FIXED,
    /** {@code Transfer-Encoding: chunked}, up to and including the trailer section. */
    CHUNKED,
    /** Everything until the sender closes. */
    UNTIL_CLOSE,
    /** The connection stops being HTTP after this head (101, or 2xx to CONNECT). */
    TUNNEL
  }

  enum HeadKind {
    /** A complete head. */
    HEAD,
    /** End of stream before any byte of a head. */
    EOF,
    /** End of stream inside a head; the bytes are still buffered. */
    TRUNCATED,
    /** The bytes cannot start an HTTP/1.x message; they are still buffered. */
    NOT_HTTP
  }

  record Head(HeadKind kind, byte[] bytes) {}

  record Request(String method, Framing framing, long length) {}

  record Response(int status, Framing framing, long length) {
    /** A 1xx other than 101: the final response to the same request follows. */
    boolean interim() {
      return status >= 100 && status < 200 && status != 101;
    }
  }

  /** A buffered reader that hands out exact byte ranges of the stream. */
  static final class Source {
    private final InputStream in;
    private byte[] buf = new byte[16 * 1024];
    private int pos;
    private int lim;

    Source(InputStream in) {
      this.in = in;
    }

    /** Reads more bytes into the buffer; false at end of stream. */
    private boolean fill() throws IOException {
      if (pos == lim) {
        pos = 0;
        lim = 0;
      } else if (lim == buf.length) {
        if (pos > 0) {
          System.arraycopy(buf, pos, buf, 0, lim - pos);
          lim -= pos;
          pos = 0;
        } else {
          buf = Arrays.copyOf(buf, buf.length * 2);
        }
      }
      int n = in.read(buf, lim, buf.length - lim);
      if (n < 0) {
        return false;
      }
      lim += n;
      return true;
    }

    /** Hands every buffered byte to the sink. */
    void drainTo(Sink sink) throws IOException, InterruptedException {
      if (lim > pos) {
        int from = pos;
        int len = lim - pos;
        pos = lim;
        sink.accept(buf, from, len);
      }
    }

    /** Hands the buffered bytes and then everything until end of stream to the sink. */
    void copyToEof(Sink sink) throws IOException, InterruptedException {
      drainTo(sink);
      while (fill()) {
        drainTo(sink);
      }
    }

    /**
     * Reads a message head (through the empty line). Returns {@code NOT_HTTP} as soon as the bytes
     * read cannot begin a request (or a response), so that other protocols are not held up
     * waiting for an empty line that never comes.
     */
    Head readHead(boolean request) throws IOException {
      int scanned = 0;
      while (true) {
        for (int i = pos + Math.max(0, scanned - 3); i + 3 < lim; i++) {
          if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n'
              && !(request && onlyEmptyLines(buf, pos, i + 4))) {
            byte[] head = Arrays.copyOfRange(buf, pos, i + 4);
            pos = i + 4;
            return new Head(HeadKind.HEAD, head);
          }
        }
        scanned = lim - pos;
        boolean plausible =
            request ? plausibleRequest(buf, pos, lim) : plausibleResponse(buf, pos, lim);
        if (!plausible || lim - pos > MAX_HEAD) {
          return new Head(HeadKind.NOT_HTTP, null);
        }
        if (!fill()) {
          return new Head(lim > pos ? HeadKind.TRUNCATED : HeadKind.EOF, null);
        }
      }
    }

    /** Copies exactly {@code n} bytes; false if the stream ended first. */
    boolean copyFixed(long n, Sink sink) throws IOException, InterruptedException {
      long left = n;
      while (left > 0) {
        if (pos == lim && !fill()) {
          return false;
        }
        int k = (int) Math.min(left, lim - pos);
        int from = pos;
        pos += k;
        left -= k;
        sink.accept(buf, from, k);
      }
      return true;
    }

    /** Reads one line through its LF; null at end of stream (a partial line stays buffered). */
    private byte[] readLine() throws IOException {
      int scanned = 0;
      while (true) {
        for (int i = pos + scanned; i < lim; i++) {
          if (buf[i] == '\n') {
            byte[] line = Arrays.copyOfRange(buf, pos, i + 1);
            pos = i + 1;
            return line;
          }
        }
        scanned = lim - pos;
        if (scanned > MAX_LINE) {
          throw new Malformed("line longer than " + MAX_LINE + " bytes");
        }
        if (!fill()) {
          return null;
        }
      }
    }

    /** Copies a chunked body through its trailer section; false if the stream ended first. */
    boolean copyChunked(Sink sink) throws IOException, InterruptedException {
      while (true) {
        byte[] line = readLine();
        if (line == null) {
          return false;
        }
        sink.accept(line);
        long size = chunkSize(line);
        if (size == 0) {
          while (true) {
            byte[] trailer = readLine();
            if (trailer == null) {
              return false;
            }
            sink.accept(trailer);
            if (isBlank(trailer)) {
              return true;
            }
          }
        }
        if (!copyFixed(size, sink)) {
          return false;
        }
        byte[] end = readLine();
        if (end == null) {
          return false;
        }
        sink.accept(end);
        if (!isBlank(end)) {
          throw new Malformed("chunk data not followed by CRLF");
        }
      }
    }

    /**
     * Copies a body framed as given; false if the stream ended before the body did. A body that
     * runs until close is complete at end of stream.
     */
    boolean copyBody(Framing framing, long length, Sink sink)
        throws IOException, InterruptedException {
      return switch (framing) {
        case NONE, TUNNEL -> true;
        case FIXED -> copyFixed(length, sink);
        case CHUNKED -> copyChunked(sink);
        case UNTIL_CLOSE -> {
          copyToEof(sink);
          yield true;
        }
      };
    }
  }

  /** The framing of a request, or null if its head cannot be framed (conflicting lengths, …). */
  static Request parseRequest(byte[] head) {
    String[] lines = lines(head);
    if (lines.length == 0) {
      return null;
    }
    int space = lines[0].indexOf(' ');
    if (space <= 0) {
      return null;
    }
    String method = lines[0].substring(0, space);
    Headers h = Headers.parse(lines);
    if (h == null) {
      return null;
    }
    if (h.transferEncoding != null) {
      // A request whose last coding is not chunked cannot be framed (RFC 9112 6.3).
      return h.chunked() ? new Request(method, Framing.CHUNKED, -1) : null;
    }
    if (h.contentLength > 0) {
      return new Request(method, Framing.FIXED, h.contentLength);
    }
    return new Request(method, Framing.NONE, 0);
  }

  /** The framing of a response to a request with this method, or null if it cannot be framed. */
  static Response parseResponse(byte[] head, String requestMethod) {
    String[] lines = lines(head);
    if (lines.length == 0 || lines[0].length() < 12) {
      return null;
    }
    int status;
    try {
      status = Integer.parseInt(lines[0].substring(9, 12));
    } catch (NumberFormatException e) {
      return null;
    }
    Headers h = Headers.parse(lines);
    if (h == null) {
      return null;
    }
    if (status == 101 || ("CONNECT".equals(requestMethod) && status / 100 == 2)) {
      return new Response(status, Framing.TUNNEL, 0);
    }
    if (status / 100 == 1 || status == 204 || status == 304 || "HEAD".equals(requestMethod)) {
      return new Response(status, Framing.NONE, 0);
    }
    if (h.transferEncoding != null) {
      return new Response(status, h.chunked() ? Framing.CHUNKED : Framing.UNTIL_CLOSE, -1);
    }
    if (h.contentLength >= 0) {
      return h.contentLength == 0
          ? new Response(status, Framing.NONE, 0)
          : new Response(status, Framing.FIXED, h.contentLength);
    }
    return new Response(status, Framing.UNTIL_CLOSE, -1);
  }

  private record Headers(long contentLength, String transferEncoding) {
    boolean chunked() {
      String[] codings = transferEncoding.split(",");
      return codings[codings.length - 1].trim().equalsIgnoreCase("chunked");
    }

    static Headers parse(String[] lines) {
      long contentLength = -1;
      String transferEncoding = null;
      for (int i = 1; i < lines.length; i++) {
        int colon = lines[i].indexOf(':');
        if (colon <= 0) {
          continue;
        }
        String name = lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT);
        String value = lines[i].substring(colon + 1).trim();
        if (name.equals("content-length")) {
          long n;
          try {
            n = Long.parseLong(value);
          } catch (NumberFormatException e) {
            return null;
          }
          if (n < 0 || (contentLength >= 0 && contentLength != n)) {
            return null;
          }
          contentLength = n;
        } else if (name.equals("transfer-encoding")) {
          transferEncoding = transferEncoding == null ? value : transferEncoding + "," + value;
        }
      }
      return new Headers(contentLength, transferEncoding);
    }
  }

  /** The head's lines without the empty lines that may precede a request (RFC 9112 2.2). */
  private static String[] lines(byte[] head) {
    String s = new String(head, StandardCharsets.ISO_8859_1);
    int start = 0;
    while (s.startsWith("\r\n", start)) {
      start += 2;
    }
    String body = s.substring(start).strip();
    return body.isEmpty() ? new String[0] : body.split("\r\n");
  }

  private static long chunkSize(byte[] line) throws Malformed {
    int end = 0;
    long size = 0;
    while (end < line.length && Character.digit(line[end], 16) >= 0) {
      size = size * 16 + Character.digit(line[end], 16);
      end++;
      if (size > (1L << 48)) {
        throw new Malformed("chunk too large");
      }
    }
    if (end == 0) {
      throw new Malformed("no chunk size");
    }
    return size;
  }

  private static boolean isBlank(byte[] line) {
    return (line.length == 2 && line[0] == '\r') || line.length == 1;
  }

  private static boolean onlyEmptyLines(byte[] b, int from, int to) {
    for (int i = from; i < to; i++) {
      if (b[i] != '\r' && b[i] != '\n') {
        return false;
      }
    }
    return true;
  }

  /**
   * Whether {@code b[from, to)} can begin an HTTP/1.x request: optional empty lines, a method
   * token, a space, a target of visible ASCII, a space, {@code HTTP/1.}, a digit, CRLF. Only the
   * request line is checked: the point is to tell other protocols apart quickly.
   */
  static boolean plausibleRequest(byte[] b, int from, int to) {
    int i = from;
    while (i < to && (b[i] == '\r' || b[i] == '\n')) {
      i++;
    }
    int methodStart = i;
    while (i < to && isTokenChar(b[i])) {
      i++;
    }
    if (i == to) {
      return i - methodStart <= 32;
    }
    if (i == methodStart || i - methodStart > 32 || b[i] != ' ') {
      return false;
    }
    i++;
    int targetStart = i;
    while (i < to && b[i] > 0x20 && b[i] < 0x7f) {
      i++;
    }
    if (i == to) {
      return true;
    }
    if (i == targetStart || b[i] != ' ') {
      return false;
    }
    return matchesPrefix(b, i + 1, to, "HTTP/1.#\r\n");
  }

  /** Whether {@code b[from, to)} can begin an HTTP/1.x response: {@code HTTP/1.x NNN}. */
  static boolean plausibleResponse(byte[] b, int from, int to) {
    return matchesPrefix(b, from, to, "HTTP/1.# ###");
  }

  /** Matches the pattern's prefix that the bytes cover; {@code #} stands for a digit. */
  private static boolean matchesPrefix(byte[] b, int from, int to, String pattern) {
    for (int k = 0; k < pattern.length() && from + k < to; k++) {
      char p = pattern.charAt(k);
      byte c = b[from + k];
      if (p == '#' ? c < '0' || c > '9' : c != p) {
        return false;
      }
    }
    return true;
  }

  private static boolean isTokenChar(byte c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
  }
}
