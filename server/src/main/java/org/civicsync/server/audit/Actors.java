package org.civicsync.server.audit;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.UUID;
import org.civicsync.core.json.Json;

/** How the audit chain names who did something. */
public final class Actors {
  private Actors() {}

  /** The server on its own account (hold sweeper, rebuilds, start-up provisioning). */
  public static ObjectNode system() {
    return Json.mapper().createObjectNode().put("kind", "system");
  }

  /** The operator holding the admin token. */
  public static ObjectNode admin() {
    return Json.mapper().createObjectNode().put("kind", "admin");
  }

  /** A device acting for a user ({@code userId} may be empty for devices enrolled before users). */
  public static ObjectNode device(UUID deviceId, String userId) {
    return Json.mapper().createObjectNode().put("kind", "device").put("deviceId", deviceId.toString()).put("userId", userId);
  }

  /** A back-office system's API client. */
  public static ObjectNode apiClient(UUID clientId) {
    return Json.mapper().createObjectNode().put("kind", "apiClient").put("clientId", clientId.toString());
  }

  /** Someone enrolling a device with a code (they hold no token yet). */
  public static ObjectNode enrollment() {
    return Json.mapper().createObjectNode().put("kind", "enrollment");
  }
}
