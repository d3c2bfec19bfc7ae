package org.civicsync.contracts;

import com.fasterxml.jackson.annotation.JsonInclude;
import java.util.List;

/** Body of {@code POST /v1/admin/tenants/{t}/users} and {@code PUT …/users/{userId}}. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record UserRequest(String userId, List<String> roles, List<String> orgUnits) {}
