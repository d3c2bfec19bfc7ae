package org.civicsync.server.tenancy;

import java.util.UUID;
import org.civicsync.server.store.DeviceRow;

/** Who made a request, as proven by its bearer token. */
public sealed interface Caller {
  /** The operator, holding the admin token. */
  record Admin() implements Caller {}

  /**
   * An enrolled device; every sync call is scoped to its tenant.
   *
   * @param row the device as stored when the request was authenticated
   */
  record Device(DeviceRow row) implements Caller {
    public UUID deviceId() {
      return row.deviceId();
    }

    public String tenantId() {
      return row.tenantId();
    }
  }
}
