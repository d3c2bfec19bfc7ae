package org.civicsync.core.access;

import java.util.List;

/** The built-in roles a user may hold. */
public final class Role {
  /** Captures and edits records in their org units. */
  public static final String FIELD_WORKER = "fieldWorker";
  /** Oversees field workers: deletes, resolves inbox items. */
  public static final String SUPERVISOR = "supervisor";
  /** Everything, tenant-wide: an admin's scope is not limited to org units. */
  public static final String ADMIN = "admin";
  /** Reads the audit trail and verifies it; nothing else. */
  public static final String AUDITOR = "auditor";

  public static final List<String> ALL = List.of(FIELD_WORKER, SUPERVISOR, ADMIN, AUDITOR);

  private Role() {}
}
