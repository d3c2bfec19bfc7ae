package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/** Answer to a resolution: the resolved item and the record it left, if any. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record ResolveResponse(InboxItemView item, ServerRecord record) {}
