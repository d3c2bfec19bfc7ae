package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A collection a service declares as data: its name, the JSON Schema (2020-12) of a record's data,
 * and how stale changes are settled.
 *
 * @param policy the conflict policy (schema {@code conflict-policy.schema.json}); {@code null}
 *     means every field merges three-way and a delete wins over a concurrent update
 * @param rules server-authoritative rules ({@code unique}, {@code capacity}); {@code null} for none
 * @param scopeField the field naming the record's org unit; {@code null}: visible tenant-wide
 * @param access per role, the actions it may take; {@code null}: the default grants
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record CollectionDefinition(
    String name, String title, String description, ObjectNode schema, ObjectNode policy,
    com.fasterxml.jackson.databind.node.ArrayNode rules, String scopeField, ObjectNode access) {

  /** A definition without scope field or access grants (visible tenant-wide, default grants). */
  public CollectionDefinition(String name, String title, String description, ObjectNode schema, ObjectNode policy,
      com.fasterxml.jackson.databind.node.ArrayNode rules) {
    this(name, title, description, schema, policy, rules, null, null);
  }
}
