package org.civicsync.server.tenancy;

import java.util.Set;
import org.civicsync.core.access.Action;
import org.civicsync.core.access.Role;
import org.civicsync.core.access.Scope;
import org.civicsync.core.collections.CollectionSchema;

/**
 * What a caller may do, resolved when its token is checked: the user it acts for, the user's
 * roles, and the org units it may see and write.
 *
 * @param userId empty for callers that act for no user (API clients)
 */
public record Access(String userId, Set<String> roles, Scope scope) {
  private static final Access BACK_OFFICE = new Access("", Set.of(Role.ADMIN), Scope.unrestricted());

  public Access {
    roles = Set.copyOf(roles);
  }

  /** Tenant-wide and every action: an online back-office system (API client). */
  public static Access backOffice() {
    return BACK_OFFICE;
  }

  /** Nothing at all (a device enrolled before users existed, or whose user is gone). */
  public static Access none(String userId) {
    return new Access(userId, Set.of(), Scope.of(Set.of()));
  }

  /** Whether the caller's roles grant {@code action} on the collection. */
  public boolean may(CollectionSchema collection, Action action) {
    return collection.grants().allows(roles, action);
  }

  public boolean hasRole(String role) {
    return roles.contains(role);
  }
}
