package org.civicsync.client.transport;

import java.io.IOException;
import java.util.Map;

/**
 * One HTTP exchange with the server. Implementations must not retry on their own: a retried push
 * is the sync engine's decision (with the same mutation ids), never a library's.
 */
public interface Transport {
  /**
   * Sends a request and returns the response, whatever its status.
   *
   * @throws IOException when no complete response arrived (the server may or may not have acted)
   * @throws java.net.ConnectException only when no connection was made, so nothing of the request
   *     left the device (a push then leaves its entries as they were, free to take later edits);
   *     likewise {@link java.net.UnknownHostException} and {@link java.net.NoRouteToHostException}
   */
  Response send(Request request) throws IOException;

  /**
   * A request: method, path and query (e.g. {@code /v1/sync/pull?limit=500}), headers, body (empty
   * for none).
   *
   * @param resumable the body may reach the server in parts over several attempts (protocol.md,
   *     "Resumable uploads"): a transport that can names the body by its digest and, after an
   *     attempt that broke off, sends only what the server lacks. Transports may ignore it and send
   *     the whole body every time.
   */
  record Request(String method, String path, Map<String, String> headers, byte[] body, boolean resumable) {
    public Request {
      headers = Map.copyOf(headers);
    }

    /** A request whose body goes whole every time. */
    public Request(String method, String path, Map<String, String> headers, byte[] body) {
      this(method, path, headers, body, false);
    }
  }

  /**
   * A response, its body already decompressed.
   *
   * @param wireBytes bytes that crossed the network for this exchange (request and response,
   *     headers included as far as the transport can tell), for statistics
   */
  record Response(int status, Map<String, String> headers, byte[] body, long wireBytes) {
    public Response {
      headers = Map.copyOf(headers);
    }
  }

  /** What a live stream (Server-Sent Events) delivers, line by line, to its reader. */
  interface EventSink {
    /** One event; return false to end the stream. */
    boolean event(String name, String id, String data);

    /** A comment line (the server's heartbeat); return false to end the stream. */
    default boolean heartbeat() {
      return true;
    }
  }

  /**
   * Opens a Server-Sent Events stream with a GET of {@code request} and hands its events to
   * {@code sink} until the server ends the stream or the sink returns false. A refusal (any
   * status but 200) comes back as the response, with its body; a stream that ran and ended comes
   * back as a 200 response with an empty body.
   *
   * @throws IOException when the stream broke, including when nothing (not even a heartbeat)
   *     arrived within the transport's read timeout
   * @throws UnsupportedOperationException when this transport cannot hold a stream open (the
   *     default): the client then polls
   */
  default Response stream(Request request, EventSink sink) throws IOException {
    throw new UnsupportedOperationException("this transport cannot hold a live stream open");
  }
}
