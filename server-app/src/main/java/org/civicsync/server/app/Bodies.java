package org.civicsync.server.app;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import io.javalin.http.Context;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Locale;
import java.util.Optional;
import java.util.zip.GZIPInputStream;
import java.util.zip.ZipException;
import org.civicsync.contracts.ErrorCode;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.WireRules;
import org.civicsync.core.validation.Violation;
import org.civicsync.server.ApiException;

/**
 * Reads request bodies: identity, gzip or zstd, capped after decompression (a small gzip body may not
 * inflate into gigabytes), parsed as one JSON value.
 */
final class Bodies {
  /** Deepest nesting a body may have: records are flat; 64 leaves room and stops stack games. */
  static final int MAX_DEPTH = 64;
  /** Longest string a body may hold. */
  static final int MAX_STRING = 1 << 20;
  private static final com.fasterxml.jackson.databind.ObjectMapper READER = limited();

  /**
   * A request attribute set when the client's connection broke while its body was being read: the
   * request is counted with status {@link #CLIENT_CLOSED}, not with the answer no one received.
   */
  static final String CLIENT_GONE = "civicsync.clientGone";
  /** The status a request is counted with when its client went away mid-body (nginx's "client closed request"). */
  static final int CLIENT_CLOSED = 499;

  private final long maxBytes;

  private static com.fasterxml.jackson.databind.ObjectMapper limited() {
    com.fasterxml.jackson.databind.ObjectMapper m = Json.mapper().copy();
    m.getFactory().setStreamReadConstraints(com.fasterxml.jackson.core.StreamReadConstraints.builder()
        .maxNestingDepth(MAX_DEPTH).maxStringLength(MAX_STRING).build());
    return m;
  }

  Bodies(long maxBytes) {
    this.maxBytes = maxBytes;
  }

  /** The body as JSON; an absent or empty body reads as {@code {}} when {@code emptyIsObject}. */
  JsonNode json(Context ctx, boolean emptyIsObject) {
    return json(ctx, emptyIsObject, Optional.empty());
  }

  /**
   * As {@link #json(Context, boolean)}, the body as sent (before its {@code Content-Encoding} is
   * undone) given in {@code sent} when it was gathered otherwise (a resumed upload).
   */
  JsonNode json(Context ctx, boolean emptyIsObject, Optional<byte[]> sent) {
    String type = ctx.header("Content-Type");
    byte[] bytes = bytes(ctx, sent);
    if (bytes.length == 0 && emptyIsObject) {
      return Json.mapper().createObjectNode();
    }
    if (type != null && !type.toLowerCase(Locale.ROOT).startsWith("application/json")) {
      throw new ApiException(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json, not " + type);
    }
    try {
      JsonNode node = READER.readTree(bytes);
      if (node == null || node.isMissingNode()) {
        throw new ApiException(ErrorCode.MALFORMED_JSON, "the body is empty; a JSON object is required");
      }
      Optional<Violation> unsafe = WireRules.firstViolation(node);
      if (unsafe.isPresent()) {
        throw new ApiException(ErrorCode.INVALID_REQUEST, unsafe.get().message(), unsafe.get().pointer());
      }
      return node;
    } catch (com.fasterxml.jackson.core.exc.StreamConstraintsException e) {
      throw new ApiException(ErrorCode.JSON_LIMITS_EXCEEDED, "the body nests deeper than " + MAX_DEPTH
          + " levels or holds a string longer than " + MAX_STRING + " characters");
    } catch (JsonProcessingException e) {
      throw new ApiException(ErrorCode.MALFORMED_JSON, "the body is not well-formed JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new ApiException(ErrorCode.MALFORMED_JSON, "the body could not be read: " + e.getMessage());
    }
  }

  private byte[] bytes(Context ctx, Optional<byte[]> sent) {
    try {
      return read(ctx, sent);
    } catch (ApiException refused) {
      // A refused body may be left partly unread (too large, or drained only up to the limit):
      // the connection is then closed, and saying so keeps a client from sending its next request
      // on a connection the server is closing (the JDK's client does not retry a POST).
      ctx.header("Connection", "close");
      throw refused;
    }
  }

  private byte[] read(Context ctx, Optional<byte[]> sent) {
    String declared = ctx.header("Content-Length");
    String encoding = ctx.header("Content-Encoding");
    String coding = "identity";
    if (encoding != null && !encoding.isBlank()) {
      String e = encoding.trim().toLowerCase(Locale.ROOT);
      if (e.equals("gzip") || e.equals("x-gzip")) {
        coding = "gzip";
      } else if (e.equals("zstd")) {
        coding = "zstd";
      } else if (!e.equals("identity")) {
        ctx.header("Accept-Encoding", ACCEPTED_CODINGS);
        throw drained(ctx.bodyInputStream(), new ApiException(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "Content-Encoding '" + encoding
            + "' is not supported; use zstd, gzip or identity"));
      }
    }
    boolean compressed = !coding.equals("identity");
    if (!compressed && declared != null && declared.matches("[0-9]{1,18}") && Long.parseLong(declared) > maxBytes) {
      throw tooLarge();
    }
    Watched raw = new Watched(sent.isPresent() ? new java.io.ByteArrayInputStream(sent.get()) : ctx.bodyInputStream());
    try (InputStream in = decoder(coding, raw)) {
      return capped(in, raw);
    } catch (IOException e) {
      if (raw.broke) {
        // The connection, not the coding: a truncated body reads as a corrupt one to the decoder.
        // Nothing is left to drain from a broken connection.
        clientGone(ctx);
        throw new ApiException(ErrorCode.MALFORMED_JSON, "the connection broke while the body was read: " + e.getMessage());
      }
      if (e instanceof ZipException || e instanceof java.io.EOFException || e instanceof com.github.luben.zstd.ZstdIOException) {
        throw drained(raw, new ApiException(ErrorCode.MALFORMED_JSON, "the " + coding + " body is corrupt: " + e.getMessage()));
      }
      throw drained(raw, new ApiException(ErrorCode.MALFORMED_JSON, "the body could not be read: " + e.getMessage()));
    }
  }

  /** Marks the request as one whose client went away before its body arrived (see {@link #CLIENT_GONE}). */
  static void clientGone(Context ctx) {
    ctx.attribute(CLIENT_GONE, Boolean.TRUE);
  }

  /** The request's own stream, remembering whether reading it failed (the connection broke). */
  private static final class Watched extends java.io.FilterInputStream {
    boolean broke;

    Watched(InputStream in) {
      super(in);
    }

    @Override
    public int read() throws IOException {
      try {
        return super.read();
      } catch (IOException e) {
        broke = true;
        throw e;
      }
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      try {
        return super.read(b, off, len);
      } catch (IOException e) {
        broke = true;
        throw e;
      }
    }
  }

  /** The decompressing stream of a content coding. */
  private InputStream decoder(String coding, InputStream raw) throws IOException {
    switch (coding) {
      case "gzip":
        return new GZIPInputStream(raw);
      case "zstd":
        byte[] frame = capped(raw, raw); // a compressed body is smaller than its content
        checkZstd(frame);
        return new com.github.luben.zstd.ZstdInputStreamNoFinalizer(new java.io.ByteArrayInputStream(frame));
      default:
        return raw;
    }
  }

  /** {@code in} read whole within the size limit; over it, {@code raw} is drained and the body refused. */
  private byte[] capped(InputStream in, InputStream raw) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[16 * 1024];
    long total = 0;
    for (int n; (n = in.read(buf)) > 0; ) {
      total += n;
      if (total > maxBytes) {
        throw drained(raw, tooLarge());
      }
      out.write(buf, 0, n);
    }
    return out.toByteArray();
  }

  /**
   * A zstd body must be one frame (RFC 8878, section 3.1.1) without a dictionary, whose window and
   * declared content size are within the body limit: the decoder takes a frame's window in memory
   * as soon as it reads the header (up to 128 MiB by default), before any limit on its output
   * could stop it.
   */
  private void checkZstd(byte[] b) {
    if (b.length < 6 || (b[0] & 0xff) != 0x28 || (b[1] & 0xff) != 0xb5 || (b[2] & 0xff) != 0x2f || (b[3] & 0xff) != 0xfd) {
      throw corruptZstd("it does not start with a zstd frame");
    }
    int descriptor = b[4] & 0xff;
    boolean single = (descriptor & 0x20) != 0;
    if ((descriptor & 0x08) != 0) {
      throw corruptZstd("its frame header's reserved bit is set");
    }
    if ((descriptor & 0x03) != 0) {
      throw new ApiException(ErrorCode.UNSUPPORTED_MEDIA_TYPE, "zstd frames with a dictionary are not accepted");
    }
    int pos = 5;
    long window = 0;
    if (!single) {
      int w = b[pos++] & 0xff;
      long base = 1L << (10 + (w >>> 3));
      window = base + base / 8 * (w & 7);
    }
    int fcsBytes = switch (descriptor >>> 6) {
      case 0 -> single ? 1 : 0;
      case 1 -> 2;
      case 2 -> 4;
      default -> 8;
    };
    if (b.length < pos + fcsBytes) {
      throw corruptZstd("its frame header is cut short");
    }
    long contentSize = -1;
    if (fcsBytes > 0) {
      long v = 0;
      for (int i = 0; i < fcsBytes; i++) {
        v |= (b[pos + i] & 0xffL) << (8 * i);
      }
      contentSize = fcsBytes == 2 ? v + 256 : v;
      if (single) {
        window = contentSize;
      }
    }
    if (Long.compareUnsigned(window, maxBytes) > 0 || (contentSize != -1 && Long.compareUnsigned(contentSize, maxBytes) > 0)) {
      throw new ApiException(ErrorCode.PAYLOAD_TOO_LARGE, "the zstd frame declares a window or content of more than " + maxBytes + " bytes");
    }
    long frame;
    try {
      frame = com.github.luben.zstd.Zstd.findFrameCompressedSize(b);
    } catch (RuntimeException e) {
      throw corruptZstd(e.getMessage());
    }
    if (frame != b.length) {
      throw corruptZstd("it is not exactly one frame");
    }
  }

  private static ApiException corruptZstd(String why) {
    return new ApiException(ErrorCode.MALFORMED_JSON, "the zstd body is corrupt: " + why);
  }

  /** The content codings request bodies may come in, as announced in responses ({@code Accept-Encoding}, RFC 7694). */
  static final String ACCEPTED_CODINGS = "zstd, gzip";

  /**
   * Reads and discards what is left of a refused body (up to the size limit) before the error is
   * answered: a client still uploading would otherwise see the connection close under it and never
   * read why — on a slow link, a retry of the same bad upload.
   */
  private ApiException drained(InputStream raw, ApiException e) {
    return drained(raw, maxBytes, e);
  }

  /** {@code e}, once what is left of {@code raw} (up to {@code limit} bytes) is read and discarded. */
  static ApiException drained(InputStream raw, long limit, ApiException e) {
    try {
      byte[] buf = new byte[16 * 1024];
      long left = limit;
      for (int n; left > 0 && (n = raw.read(buf)) > 0; ) {
        left -= n;
      }
    } catch (IOException ignored) {
      // The connection is gone; there is nobody left to answer.
    }
    return e;
  }

  private ApiException tooLarge() {
    return new ApiException(ErrorCode.PAYLOAD_TOO_LARGE, "the body is larger than " + maxBytes + " bytes (after decompression)");
  }
}
