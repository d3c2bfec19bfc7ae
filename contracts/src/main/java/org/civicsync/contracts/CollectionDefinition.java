package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A collection a service declares as data: its name and the JSON Schema (2020-12) of a record's
 * data. Later protocol versions add conflict policies and rules here.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record CollectionDefinition(String name, String title, String description, ObjectNode schema) {}
