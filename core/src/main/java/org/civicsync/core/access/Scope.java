package org.civicsync.core.access;

import java.util.ArrayDeque;
import java.util.Collection;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a user may see: every org unit they are assigned and every unit below them, or everything
 * (admins). Immutable.
 */
public final class Scope {
  private static final Scope UNRESTRICTED = new Scope(Optional.empty());

  private final Optional<Set<String>> units;

  private Scope(Optional<Set<String>> units) {
    this.units = units;
  }

  /** No limit: every record of the tenant (admins, API clients). */
  public static Scope unrestricted() {
    return UNRESTRICTED;
  }

  /** Exactly these units (already expanded). */
  public static Scope of(Set<String> units) {
    return new Scope(Optional.of(Set.copyOf(units)));
  }

  /**
   * The assigned units and all their descendants in the tree given as child → parent (units not in
   * the tree are ignored). Cycles cannot occur (the admin API refuses them) but would not loop.
   */
  public static Scope expand(Collection<String> assigned, Map<String, Optional<String>> parentOf) {
    Map<String, List<String>> children = new HashMap<>();
    parentOf.forEach((child, parent) -> parent.ifPresent(p -> children.computeIfAbsent(p, k -> new java.util.ArrayList<>()).add(child)));
    Set<String> out = new TreeSet<>();
    Deque<String> todo = new ArrayDeque<>();
    for (String a : assigned) {
      if (parentOf.containsKey(a)) {
        todo.add(a);
      }
    }
    while (!todo.isEmpty()) {
      String u = todo.poll();
      if (out.add(u)) {
        todo.addAll(children.getOrDefault(u, List.of()));
      }
    }
    return of(out);
  }

  /** The units, sorted; empty for an unrestricted scope. */
  public Optional<Set<String>> units() {
    return units.map(TreeSet::new);
  }

  public boolean isUnrestricted() {
    return !units.isPresent();
  }

  /**
   * Whether a record with this scope key is visible: a key of {@code null} (a collection without
   * scope field) always is; otherwise the key must be one of the units.
   */
  public boolean covers(String scopeKey) {
    return scopeKey == null || units.map(u -> u.contains(scopeKey)).orElse(true);
  }
}
