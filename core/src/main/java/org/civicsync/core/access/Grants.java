package org.civicsync.core.access;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

/**
 * The actions each role may take on one collection, from the definition's {@code access} object or,
 * when it has none, the defaults: fieldWorker read/create/update; supervisor and admin everything;
 * auditor nothing.
 */
public final class Grants {
  private final Map<String, Set<Action>> byRole;

  private Grants(Map<String, Set<Action>> byRole) {
    this.byRole = Map.copyOf(byRole);
  }

  public static Grants defaults() {
    Map<String, Set<Action>> m = new HashMap<>();
    m.put(Role.FIELD_WORKER, EnumSet.of(Action.READ, Action.CREATE, Action.UPDATE));
    m.put(Role.SUPERVISOR, EnumSet.allOf(Action.class));
    m.put(Role.ADMIN, EnumSet.allOf(Action.class));
    m.put(Role.AUDITOR, EnumSet.noneOf(Action.class));
    return new Grants(m);
  }

  /**
   * Parses a definition's {@code access} object (already schema-checked); a role it does not list
   * gets nothing. {@code null} gives the defaults.
   */
  public static Grants parse(JsonNode access) {
    if (access == null || access.isNull() || access.isMissingNode()) {
      return defaults();
    }
    Map<String, Set<Action>> m = new HashMap<>();
    access.fields().forEachRemaining(e -> {
      Set<Action> actions = EnumSet.noneOf(Action.class);
      e.getValue().forEach(a -> actions.add(Action.parse(a.asText())
          .orElseThrow(() -> new IllegalArgumentException("unknown action '" + a.asText() + "'"))));
      m.put(e.getKey(), actions);
    });
    return new Grants(m);
  }

  /** Whether any of {@code roles} grants {@code action}. */
  public boolean allows(Collection<String> roles, Action action) {
    for (String r : roles) {
      if (byRole.getOrDefault(r, Set.of()).contains(action)) {
        return true;
      }
    }
    return false;
  }
}
