package org.civicsync.contracts;

import java.util.List;

/** Answer to {@code GET /v1/admin/tenants/{t}/users}. */
public record UsersResponse(List<User> users) {}
