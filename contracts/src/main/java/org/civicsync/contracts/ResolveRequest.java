package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Body of {@code POST /v1/inbox/{id}/resolve}.
 *
 * @param resolution {@code keepServer}, {@code takeClient} or {@code edit}
 * @param data edit: the record's new data; otherwise {@code null}
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ResolveRequest(String resolution, ObjectNode data, String comment) {}
