package org.civicsync.contracts;

import java.util.List;

/** Answer to {@code GET /v1/admin/tenants/{t}/devices}. */
public record DevicesResponse(List<Device> devices) {}
