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
   */
  Response send(Request request) throws IOException;

  /** A request: method, path and query (e.g. {@code /v1/sync/pull?limit=500}), headers, body (empty for none). */
  record Request(String method, String path, Map<String, String> headers, byte[] body) {
    public Request {
      headers = Map.copyOf(headers);
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
}
