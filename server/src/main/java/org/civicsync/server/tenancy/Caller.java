package org.civicsync.server.tenancy;

import java.util.UUID;
import org.civicsync.server.audit.Actors;
import org.civicsync.server.store.DeviceRow;

/** Who made a request, as proven by its bearer token. */
public sealed interface Caller {
  /** The operator, holding the admin token. */
  record Admin() implements Caller {}

  /**
   * An online back-office system with an API-client credential: reads and writes records
   * through the records API, in its tenant, tenant-wide.
   */
  record ApiClient(DeviceRow row) implements Caller {
    public UUID clientId() {
      return row.deviceId();
    }

    public String tenantId() {
      return row.tenantId();
    }

    /** The same identity as a device, for the write pipeline shared with pushes. */
    public Device asWriter() {
      return new Device(row, Access.backOffice());
    }
  }

  /**
   * An enrolled device acting for its user; every sync call is scoped to its tenant and to what
   * {@code access} allows.
   *
   * @param row the device as stored when the request was authenticated
   */
  record Device(DeviceRow row, Access access) implements Caller {
    public UUID deviceId() {
      return row.deviceId();
    }

    public String tenantId() {
      return row.tenantId();
    }

    /** How the audit chain names this caller. */
    public com.fasterxml.jackson.databind.node.ObjectNode actor() {
      return DeviceRow.API_CLIENT.equals(row.kind()) ? Actors.apiClient(row.deviceId())
          : Actors.device(row.deviceId(), access.userId());
    }
  }
}
