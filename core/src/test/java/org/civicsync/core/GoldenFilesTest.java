package org.civicsync.core;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.InputStream;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.civicsync.contracts.CreateTenantRequest;
import org.civicsync.contracts.EnrollRequest;
import org.civicsync.contracts.EnrollResponse;
import org.civicsync.contracts.EnrollmentCode;
import org.civicsync.contracts.EnrollmentCodeRequest;
import org.civicsync.contracts.ErrorResponse;
import org.civicsync.contracts.PullResponse;
import org.civicsync.contracts.PushRequest;
import org.civicsync.contracts.PushResponse;
import org.civicsync.contracts.SyncStatus;
import org.civicsync.contracts.Tenant;
import org.civicsync.core.json.Json;
import org.civicsync.core.validation.SchemaChecker;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every golden file in {@code contracts} validates against its schema (named by the part of the
 * file name before the first dot) and survives a round trip through its Java record unchanged.
 */
class GoldenFilesTest {
  private static final Map<String, Class<?>> RECORDS = Map.ofEntries(
      Map.entry("push-request", PushRequest.class),
      Map.entry("push-response", PushResponse.class),
      Map.entry("pull-response", PullResponse.class),
      Map.entry("error-response", ErrorResponse.class),
      Map.entry("enroll-request", EnrollRequest.class),
      Map.entry("enroll-response", EnrollResponse.class),
      Map.entry("create-tenant-request", CreateTenantRequest.class),
      Map.entry("tenant", Tenant.class),
      Map.entry("enrollment-code-request", EnrollmentCodeRequest.class),
      Map.entry("enrollment-code", EnrollmentCode.class),
      Map.entry("sync-status", SyncStatus.class),
      Map.entry("user-request", org.civicsync.contracts.UserRequest.class),
      Map.entry("user", org.civicsync.contracts.User.class),
      Map.entry("org-unit-request", org.civicsync.contracts.OrgUnitRequest.class),
      Map.entry("org-unit", org.civicsync.contracts.OrgUnit.class),
      Map.entry("challenge-request", org.civicsync.contracts.ChallengeRequest.class),
      Map.entry("challenge", org.civicsync.contracts.Challenge.class),
      Map.entry("token-request", org.civicsync.contracts.TokenRequest.class),
      Map.entry("token", org.civicsync.contracts.Token.class),
      Map.entry("audit-verification", org.civicsync.contracts.AuditVerification.class),
      Map.entry("record-trail", org.civicsync.contracts.RecordTrail.class),
      Map.entry("stats", org.civicsync.contracts.Stats.class),
      Map.entry("domain-event", org.civicsync.contracts.DomainEvent.class));

  static List<String> goldenFiles() throws Exception {
    URL dir = GoldenFilesTest.class.getClassLoader().getResource("org/civicsync/contracts/examples");
    assertThat(dir).isNotNull();
    // The contracts jar or classes directory: list it either way.
    if (dir.getProtocol().equals("file")) {
      try (Stream<Path> s = Files.list(Path.of(dir.toURI()))) {
        return s.map(p -> p.getFileName().toString()).sorted().toList();
      }
    }
    try (var fs = java.nio.file.FileSystems.newFileSystem(dir.toURI(), Map.of());
        Stream<Path> s = Files.list(fs.getPath("org/civicsync/contracts/examples"))) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("goldenFiles")
  void goldenFileValidatesAndRoundTripsThroughItsRecord(String file) throws Exception {
    String kind = file.substring(0, file.indexOf('.'));
    JsonNode golden;
    try (InputStream in = getClass().getClassLoader().getResourceAsStream("org/civicsync/contracts/examples/" + file)) {
      golden = Json.mapper().readTree(in);
    }
    assertThat(SchemaChecker.contract(kind + ".schema.json").violations(golden)).as(file).isEmpty();
    Class<?> type = RECORDS.get(kind);
    assertThat(type).as("record class for %s", kind).isNotNull();
    Object record = Json.mapper().treeToValue(golden, type);
    JsonNode back = Json.mapper().valueToTree(record);
    // Compared canonically: 1 read as an int and written back from a long is the same JSON.
    assertThat(org.civicsync.core.canonical.Jcs.canonicalString(normalizeInstants(back)))
        .isEqualTo(org.civicsync.core.canonical.Jcs.canonicalString(normalizeInstants(golden)));
  }

  /** Instants are compared as instants: a record may print "…:00Z" where the file says "…:00.000Z". */
  private static JsonNode normalizeInstants(JsonNode node) {
    JsonNode copy = node.deepCopy();
    walk(copy);
    return copy;
  }

  private static void walk(JsonNode n) {
    if (n.isObject()) {
      var o = (com.fasterxml.jackson.databind.node.ObjectNode) n;
      o.fieldNames().forEachRemaining(k -> {
        JsonNode v = o.get(k);
        if (v.isTextual() && (k.endsWith("At") || k.equals("serverTime")) && v.asText().endsWith("Z")) {
          o.put(k, java.time.Instant.parse(v.asText()).toString());
        } else {
          walk(v);
        }
      });
    } else if (n.isArray()) {
      n.forEach(GoldenFilesTest::walk);
    }
  }
}
