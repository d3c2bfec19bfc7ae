package org.civicsync.core.validation;

import com.fasterxml.jackson.databind.JsonNode;
import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SchemaRegistryConfig;
import com.networknt.schema.SpecificationVersion;
import com.networknt.schema.path.PathType;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.civicsync.contracts.Schemas;

/**
 * A compiled JSON Schema. Thread-safe; compile once and reuse. Contract schemas resolve their
 * relative {@code $ref}s among the contract's own files, never over the network.
 */
public final class SchemaChecker {
  private static final SchemaRegistryConfig CONFIG =
      SchemaRegistryConfig.builder()
          .formatAssertionsEnabled(true)
          .pathType(PathType.JSON_POINTER)
          .locale(Locale.ROOT)
          .build();

  private static final SchemaRegistry REGISTRY =
      SchemaRegistry.withDefaultDialect(
          SpecificationVersion.DRAFT_2020_12,
          b ->
              b.schemaRegistryConfig(CONFIG)
                  .schemas(
                      iri ->
                          iri.startsWith(Schemas.BASE_URI)
                              ? Schemas.text(iri.substring(Schemas.BASE_URI.length()))
                              : null));

  private final Schema schema;

  private SchemaChecker(Schema schema) {
    this.schema = schema;
  }

  /** One of the contract's schemas, by file name (see {@link Schemas}). */
  public static SchemaChecker contract(String fileName) {
    return new SchemaChecker(REGISTRY.getSchema(SchemaLocation.of(Schemas.BASE_URI + fileName)));
  }

  /** A schema given as a tree, e.g. a collection's record schema. */
  public static SchemaChecker of(JsonNode schema) {
    return new SchemaChecker(REGISTRY.getSchema(SchemaLocation.DOCUMENT, schema));
  }

  /** All violations, in the validator's order; empty when the value conforms. */
  public List<Violation> violations(JsonNode value) {
    return schema.validate(value).stream().map(SchemaChecker::toViolation).collect(java.util.stream.Collectors.collectingAndThen(java.util.stream.Collectors.toList(), java.util.Collections::unmodifiableList));
  }

  /** The first violation, if any. */
  public Optional<Violation> firstViolation(JsonNode value) {
    List<Error> errors = schema.validate(value);
    return errors.isEmpty() ? Optional.empty() : Optional.of(toViolation(errors.get(0)));
  }

  private static Violation toViolation(Error e) {
    String at = e.getInstanceLocation() == null ? "" : e.getInstanceLocation().toString();
    if (at.equals("/")) {
      at = "";
    }
    // "required" is reported at the parent object; point at the missing member instead.
    if ("required".equals(e.getKeyword()) && e.getProperty() != null) {
      at = at + "/" + e.getProperty();
    }
    return new Violation(at, e.getMessage());
  }
}
