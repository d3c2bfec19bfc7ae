package org.civicsync.contracts;

import java.util.List;

/** Answer to {@code GET /v1/admin/tenants/{t}/org-units}. */
public record OrgUnitsResponse(List<OrgUnit> orgUnits) {}
