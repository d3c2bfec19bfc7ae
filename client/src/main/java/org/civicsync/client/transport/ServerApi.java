package org.civicsync.client.transport;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.civicsync.contracts.Challenge;
import org.civicsync.contracts.ChallengeRequest;
import org.civicsync.contracts.CollectionsResponse;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.OutcomesResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.Token;
import org.civicsync.contracts.TokenRequest;
import org.civicsync.core.json.Json;

/**
 * The protocol's device calls over a {@link Transport}. Each call either returns the server's
 * answer, throws {@link ApiError} (the server refused; nothing changed), or throws {@link
 * IOException} (no answer: the request may or may not have been acted on, so only idempotent
 * retries are safe — which every call here is).
 */
public final class ServerApi {
  private final Transport transport;
  private long wireBytes;

  public ServerApi(Transport transport) {
    this.transport = transport;
  }

  /** Bytes that crossed the network through this API so far. */
  public synchronized long wireBytes() {
    return wireBytes;
  }

  public EnrollResponse enroll(EnrollRequest request) throws IOException, ApiError {
    return call("POST", "/v1/devices/enroll", Optional.empty(), request, EnrollResponse.class);
  }

  public Challenge challenge(UUID deviceId) throws IOException, ApiError {
    return call("POST", "/v1/devices/challenge", Optional.empty(), new ChallengeRequest(deviceId), Challenge.class);
  }

  public Token token(TokenRequest request) throws IOException, ApiError {
    return call("POST", "/v1/devices/token", Optional.empty(), request, Token.class);
  }

  public CollectionsResponse collections(String token) throws IOException, ApiError {
    return collections(token, Optional.empty()).changed().orElseThrow(() -> new IOException("the server sent no definitions"));
  }

  /**
   * The collection definitions, or word that they are still those the server tagged {@code etag}
   * (a {@code 304}, without a body: on 2G the definitions are seconds of downlink).
   *
   * @param etag the {@link Definitions#etag()} of an earlier answer; empty to fetch them outright
   */
  public Definitions collections(String token, Optional<String> etag) throws IOException, ApiError {
    Map<String, String> headers = new HashMap<>();
    etag.ifPresent(t -> headers.put("If-None-Match", t));
    Transport.Response r = exchange("GET", "/v1/collections", Optional.of(token), headers, null, false);
    if (r.status() == 304 && etag.isPresent()) {
      return new Definitions(Optional.empty(), etag);
    }
    if (r.status() < 200 || r.status() >= 300) {
      throw error(r);
    }
    return new Definitions(Optional.of(Json.mapper().readValue(r.body(), CollectionsResponse.class)),
        Optional.ofNullable(r.headers().get("etag")));
  }

  /**
   * An answer to {@link #collections(String, Optional)}.
   *
   * @param changed the definitions; empty when those the caller has are current
   * @param etag the server's tag of the current definitions, to send next time (empty if it gave none)
   */
  public record Definitions(Optional<CollectionsResponse> changed, Optional<String> etag) {}

  /**
   * Pushes a batch. Asks for the minimal answer (results by position, without the two ids each
   * would repeat from the request) and returns the results with their ids filled in from the
   * request, so callers see the full form whichever the server sent.
   *
   * @throws IOException also when the answer does not hold one result per mutation, in order
   */
  public PushResponse push(String token, PushRequest request) throws IOException, ApiError {
    Transport.Response r = exchange("POST", "/v1/sync/push", Optional.of(token), Map.of("Prefer", PushResponse.RETURN_MINIMAL), request,
        true);
    if (r.status() < 200 || r.status() >= 300) {
      throw error(r);
    }
    PushResponse answer = Json.mapper().readValue(r.body(), PushResponse.class);
    try {
      return answer.withIdsOf(request.mutations());
    } catch (IllegalArgumentException e) {
      throw new IOException("the server's answer does not match the push: " + e.getMessage(), e);
    }
  }

  public PullResponse pull(String token, Optional<String> cursor, int limit) throws IOException, ApiError {
    return call("GET", "/v1/sync/pull?limit=" + limit + cursor.map(c -> "&cursor=" + enc(c)).orElse(""), Optional.of(token), null,
        PullResponse.class);
  }

  public OutcomesResponse outcomes(String token, Optional<String> cursor) throws IOException, ApiError {
    return call("GET", "/v1/sync/outcomes?limit=1000" + cursor.map(c -> "&cursor=" + enc(c)).orElse(""), Optional.of(token), null,
        OutcomesResponse.class);
  }

  /**
   * Holds the device's live stream ({@code GET /v1/sync/stream}) open, handing its events to
   * {@code sink}, until it ends; throws {@link ApiError} when the server refuses it.
   */
  public void stream(String token, Optional<String> lastEventId, Transport.EventSink sink) throws IOException, ApiError {
    Map<String, String> headers = new HashMap<>();
    headers.put("Authorization", "Bearer " + token);
    lastEventId.ifPresent(id -> headers.put("Last-Event-ID", id));
    Transport.Response r = transport.stream(new Transport.Request("GET", "/v1/sync/stream", headers, new byte[0]), sink);
    if (r.status() != 200) {
      throw error(r);
    }
  }

  private <T> T call(String method, String path, Optional<String> token, Object body, Class<T> type) throws IOException, ApiError {
    return call(method, path, token, Map.of(), body, type);
  }

  private <T> T call(String method, String path, Optional<String> token, Map<String, String> extraHeaders, Object body, Class<T> type)
      throws IOException, ApiError {
    Transport.Response r = exchange(method, path, token, extraHeaders, body, false);
    if (r.status() >= 200 && r.status() < 300) {
      return Json.mapper().readValue(r.body(), type);
    }
    throw error(r);
  }

  private Transport.Response exchange(String method, String path, Optional<String> token, Map<String, String> extraHeaders, Object body,
      boolean resumable) throws IOException {
    Map<String, String> headers = new HashMap<>(extraHeaders);
    token.ifPresent(t -> headers.put("Authorization", "Bearer " + t));
    byte[] bytes = body == null ? new byte[0] : Json.mapper().writeValueAsBytes(body);
    Transport.Response r = transport.send(new Transport.Request(method, path, headers, bytes, resumable));
    synchronized (this) {
      wireBytes += r.wireBytes();
    }
    return r;
  }

  private static ApiError error(Transport.Response r) {
    String code = "HTTP_" + r.status();
    String message = "";
    try {
      JsonNode err = Json.mapper().readTree(r.body());
      code = err.path("error").path("code").asText(code);
      message = err.path("error").path("message").asText("");
    } catch (IOException notJson) {
      // A proxy's error page: keep the status as the code.
    }
    if (r.status() == 401 && code.equals("HTTP_401")) {
      // HttpURLConnection drops the body of a 401 to a request streamed with a fixed length (a
      // push): whatever it said, the token did not work, and the caller renews it by its key.
      code = "UNAUTHENTICATED";
    }
    Optional<Long> retry = Optional.ofNullable(r.headers().get("retry-after")).filter(v -> v.matches("[0-9]{1,9}")).map(Long::parseLong);
    return new ApiError(r.status(), code, message, retry);
  }

  private static String enc(String s) {
    try {
      return URLEncoder.encode(s, "UTF-8");
    } catch (java.io.UnsupportedEncodingException e) {
      throw new IllegalStateException(e);
    }
  }
}
