package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;

/** Body of {@code PUT /v1/admin/tenants/{t}/org-units/{orgUnitId}}; {@code parent} absent for a root. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record OrgUnitRequest(String parent, String name) {}
