package org.civicsync.core.conflicts;

import java.util.Map;
import java.util.Set;

/** How one field is settled: by a policy, or by a field kind with a merge of its own. */
public sealed interface FieldRule {
  /** Settled by a policy when both sides changed it. */
  record ByPolicy(PolicyName policy) implements FieldRule {}

  /** An array that only grows: both sides' additions are kept, ordered by clock; never a conflict. */
  record AppendOnly() implements FieldRule {}

  /** A number changed by deltas: the client's delta since the base is added to the server's value. */
  record Counter() implements FieldRule {}

  /**
   * A value that only moves forward along declared transitions (an appointment's status). A move
   * the client could not make from what it saw is rejected; a stale move the server's state has
   * already passed is dropped and reported.
   *
   * @param transitions for each value, the values it may move to; a value with no entry is final
   */
  record Monotonic(Map<String, Set<String>> transitions) implements FieldRule {
    public Monotonic {
      transitions = Map.copyOf(transitions);
    }

    /**
     * Whether the value may move from {@code from} to {@code to}: along one or more declared
     * transitions (a device that checked a patient in and then completed the visit offline sends
     * one change, booked to completed), never backwards.
     */
    public boolean allows(String from, String to) {
      if (from.equals(to)) {
        return true;
      }
      java.util.Deque<String> todo = new java.util.ArrayDeque<>(transitions.getOrDefault(from, Set.of()));
      Set<String> seen = new java.util.HashSet<>();
      while (!todo.isEmpty()) {
        String v = todo.pop();
        if (v.equals(to)) {
          return true;
        }
        if (seen.add(v)) {
          todo.addAll(transitions.getOrDefault(v, Set.of()));
        }
      }
      return false;
    }

    /** A value no other value moves to: where a record may start when the field is first set. */
    public boolean isInitial(String value) {
      return transitions.values().stream().noneMatch(targets -> targets.contains(value))
          && (transitions.containsKey(value));
    }

    /** Every value the transitions name. */
    public Set<String> values() {
      Set<String> all = new java.util.HashSet<>(transitions.keySet());
      transitions.values().forEach(all::addAll);
      return all;
    }
  }
}
