package org.civicsync.bench;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.UUID;
import java.util.zip.GZIPOutputStream;
import org.civicsync.core.json.Json;
import org.civicsync.core.signing.Ed25519;

/** The server's HTTP API as the benchmark uses it: admin set-up, enrollment, raw pushes and pulls. */
final class Api {
  /** A device enrolled with its own key pair. */
  record Device(UUID id, String token, Ed25519.KeyPair keys) {}

  private final URI base;
  final HttpClient http;

  Api(URI base) {
    this.base = base;
    this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  URI base() {
    return base;
  }

  JsonNode admin(String method, String path, String body) throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve(path)).header("Authorization", "Bearer " + ServerProcess.ADMIN)
        .header("Content-Type", "application/json").method(method, HttpRequest.BodyPublishers.ofString(body)).build(),
        HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() / 100 != 2) {
      throw new IllegalStateException(method + " " + path + ": " + r.statusCode() + " " + r.body());
    }
    return r.body().isEmpty() ? Json.mapper().createObjectNode() : Json.mapper().readTree(r.body());
  }

  /** The server's {@code /metrics} exposition, as text. */
  String metrics() throws Exception {
    HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("/metrics")).header("Authorization", "Bearer " + ServerProcess.ADMIN)
        .GET().build(), HttpResponse.BodyHandlers.ofString());
    if (r.statusCode() != 200) {
      throw new IllegalStateException("GET /metrics: " + r.statusCode());
    }
    return r.body();
  }

  /** The samples named {@code name} (e.g. {@code civicsync_store_write_held_seconds_sum}) of an exposition, summed over their labels. */
  static double sample(String exposition, String name) {
    double sum = 0;
    for (String line : exposition.split("\n")) {
      if (line.startsWith(name + " ") || line.startsWith(name + "{")) {
        sum += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  /** A tenant with one tenant-wide user, {@code clerk}. */
  void tenant(String tenantId) throws Exception {
    admin("POST", "/v1/admin/tenants", "{\"tenantId\":\"" + tenantId + "\"}");
    admin("PUT", "/v1/admin/tenants/" + tenantId + "/users/clerk", "{\"roles\":[\"admin\"]}");
  }

  /** {@code n} devices of the tenant's clerk, each with a fresh key pair. */
  java.util.List<Device> devices(String tenantId, int n) throws Exception {
    String code = admin("POST", "/v1/admin/tenants/" + tenantId + "/enrollment-codes",
        "{\"userId\":\"clerk\",\"maxUses\":" + Math.max(1, n) + "}").get("code").asText();
    java.util.List<Device> out = new java.util.ArrayList<>();
    for (int i = 0; i < n; i++) {
      Ed25519.KeyPair keys = Ed25519.generate();
      HttpResponse<String> r = http.send(HttpRequest.newBuilder(base.resolve("/v1/devices/enroll")).header("Content-Type", "application/json")
          .POST(HttpRequest.BodyPublishers.ofString("{\"enrollmentCode\":\"" + code + "\",\"deviceName\":\"bench " + i
              + "\",\"publicKey\":\"" + keys.publicKey().encoded() + "\"}")).build(), HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 201) {
        throw new IllegalStateException("enroll: " + r.statusCode() + " " + r.body());
      }
      JsonNode e = Json.mapper().readTree(r.body());
      out.add(new Device(UUID.fromString(e.get("deviceId").asText()), e.get("token").asText(), keys));
    }
    return out;
  }

  /**
   * Sends a gzip-compressed push body as the SDK does (asking for results by position); returns
   * the response body (decompressed by the caller if asked).
   */
  HttpResponse<byte[]> push(Device d, byte[] gzippedBody) throws IOException, InterruptedException {
    return http.send(HttpRequest.newBuilder(base.resolve("/v1/sync/push")).header("Authorization", "Bearer " + d.token())
        .header("Content-Type", "application/json").header("Content-Encoding", "gzip").header("Accept-Encoding", "gzip")
        .header("Prefer", "return=minimal").POST(HttpRequest.BodyPublishers.ofByteArray(gzippedBody)).build(), HttpResponse.BodyHandlers.ofByteArray());
  }

  static byte[] gzip(byte[] raw) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(raw.length / 4 + 64);
    try (GZIPOutputStream z = new GZIPOutputStream(out)) {
      z.write(raw);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  static byte[] gunzip(byte[] z) {
    try (java.util.zip.GZIPInputStream in = new java.util.zip.GZIPInputStream(new java.io.ByteArrayInputStream(z))) {
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
