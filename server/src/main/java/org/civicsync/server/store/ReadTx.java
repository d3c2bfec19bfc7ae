package org.civicsync.server.store;

import java.util.List;

/**
 * A read-only view of one tenant at one consistent snapshot, open only inside {@link
 * ServerStore#read}: what the audit verifier walks while writers go on.
 */
public interface ReadTx {
  /** The audit chain's last link as the tenant row records it. */
  AuditHead auditHead();

  /** Audit entries with {@code seq > afterSeq}, ascending, at most {@code limit}. */
  List<AuditEntry> audit(long afterSeq, int limit);

  /** Event-log entries with {@code seq > afterSeq}, ascending, at most {@code limit}. */
  List<LoggedMutation> logged(long afterSeq, int limit);

  /** Outcome rows of every device with {@code seq > afterSeq}, ascending, at most {@code limit}. */
  List<OutcomeRow> outcomeRows(long afterSeq, int limit);
}
