package org.civicsync.contracts;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;

/** Names and loading of the contract's JSON Schemas, which are resources of this module. */
public final class Schemas {
  /** Base URI of every schema's {@code $id}; files sit beside each other so relative refs work. */
  public static final String BASE_URI = "https://civicsync.org/schemas/v1/";

  /** Classpath folder of the schema files. */
  public static final String RESOURCE_DIR = "org/civicsync/contracts/schemas/";

  public static final String MUTATION = "mutation.schema.json";
  public static final String PUSH_REQUEST = "push-request.schema.json";
  public static final String PUSH_RESPONSE = "push-response.schema.json";
  public static final String PULL_RESPONSE = "pull-response.schema.json";
  public static final String ERROR_RESPONSE = "error-response.schema.json";
  public static final String CREATE_TENANT_REQUEST = "create-tenant-request.schema.json";
  public static final String ENROLLMENT_CODE_REQUEST = "enrollment-code-request.schema.json";
  public static final String ENROLL_REQUEST = "enroll-request.schema.json";
  public static final String COLLECTION_DEFINITION = "collection-definition.schema.json";
  public static final String INBOX_ITEM = "inbox-item.schema.json";
  public static final String RESOLVE_REQUEST = "resolve-request.schema.json";
  public static final String API_CLIENT_REQUEST = "api-client-request.schema.json";
  public static final String CHALLENGE_REQUEST = "challenge-request.schema.json";
  public static final String TOKEN_REQUEST = "token-request.schema.json";
  public static final String USER_REQUEST = "user-request.schema.json";
  public static final String ORG_UNIT_REQUEST = "org-unit-request.schema.json";

  /** Every schema file of the contract. */
  public static final List<String> ALL =
      List.of(
          "error-detail.schema.json",
          ERROR_RESPONSE,
          MUTATION,
          PUSH_REQUEST,
          "server-record.schema.json",
          "mutation-result.schema.json",
          PUSH_RESPONSE,
          "change.schema.json",
          PULL_RESPONSE,
          CREATE_TENANT_REQUEST,
          "tenant.schema.json",
          ENROLLMENT_CODE_REQUEST,
          "enrollment-code.schema.json",
          ENROLL_REQUEST,
          "enroll-response.schema.json",
          "sync-status.schema.json",
          "conflict-policy.schema.json",
          COLLECTION_DEFINITION,
          "collections-response.schema.json",
          INBOX_ITEM,
          "inbox-response.schema.json",
          RESOLVE_REQUEST,
          "resolve-response.schema.json",
          "outcomes-response.schema.json",
          API_CLIENT_REQUEST,
          "api-client-credential.schema.json",
          "records-page.schema.json",
          CHALLENGE_REQUEST,
          "challenge.schema.json",
          TOKEN_REQUEST,
          "token.schema.json",
          USER_REQUEST,
          "user.schema.json",
          "users-response.schema.json",
          ORG_UNIT_REQUEST,
          "org-unit.schema.json",
          "org-units-response.schema.json",
          "device.schema.json",
          "devices-response.schema.json",
          "audit-verification.schema.json",
          "record-trail.schema.json",
          "stats.schema.json",
          "domain-event.schema.json");

  private Schemas() {}

  /** The text of one schema file. */
  public static String text(String fileName) {
    return resource(RESOURCE_DIR + fileName);
  }

  /** The OpenAPI 3.1 document of the HTTP API. */
  public static String openApiYaml() {
    return resource("org/civicsync/contracts/openapi.yaml");
  }

  static String resource(String path) {
    try (InputStream in = Schemas.class.getClassLoader().getResourceAsStream(path)) {
      if (in == null) {
        throw new IllegalStateException("missing contract resource " + path);
      }
      // Not InputStream.readAllBytes: Android has it only from API 33.
      java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
      byte[] buf = new byte[8192];
      for (int n; (n = in.read(buf)) > 0; ) {
        out.write(buf, 0, n);
      }
      return new String(out.toByteArray(), java.nio.charset.StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
