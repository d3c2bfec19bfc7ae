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
  /**
   * An online back-office system with an API-client credential: reads and writes records
   * through the records API, in its tenant.
   */
  record ApiClient(DeviceRow row) implements Caller {
    public java.util.UUID clientId() {
      return row.deviceId();
    }

    public String tenantId() {
      return row.tenantId();
    }

    /** The same identity as a device, for the write pipeline shared with pushes. */
    public Device asWriter() {
      return new Device(row);
    }
  }

  record Device(DeviceRow row) implements Caller {
    public UUID deviceId() {
      return row.deviceId();
    }

    public String tenantId() {
      return row.tenantId();
    }
  }
}
