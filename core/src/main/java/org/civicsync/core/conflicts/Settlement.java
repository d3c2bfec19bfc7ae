package org.civicsync.core.conflicts;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import org.civicsync.contracts.ErrorCode;

/** How an update was settled against the server's state. */
public sealed interface Settlement {
  /**
   * Apply: the record's next data and per-field clocks.
   *
   * @param overridden fields of the change that did not take effect as sent
   * @param combined whether the result holds anything the client did not send (server changes it
   *     had not seen, or a combined value): the client must then take the server's record
   */
  record Apply(ObjectNode data, Map<String, String> fieldHlc, List<String> overridden, boolean combined) implements Settlement {
    public Apply {
      overridden = List.copyOf(overridden);
      fieldHlc = Map.copyOf(fieldHlc);
    }
  }

  /** Park for a person: fields changed on both sides differently, or under manual review. */
  record Park(List<String> conflictFields) implements Settlement {
    public Park {
      conflictFields = List.copyOf(conflictFields);
    }
  }

  /** Refuse the change. */
  record Reject(ErrorCode code, String message, String field) implements Settlement {}
}
