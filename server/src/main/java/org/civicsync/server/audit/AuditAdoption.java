package org.civicsync.server.audit;

import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import org.civicsync.core.json.Json;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.ServerStore;

/**
 * Brings a tenant whose data predates the audit chain (a database upgraded from before protocol
 * version 6 of the store) under the chain: its existing log and outcome rows are vouched for by a
 * first entry of type {@code audit.adopted}. What happened to those rows before adoption cannot be
 * proven; from then on every change can. Runs at start-up, before requests are served.
 */
public final class AuditAdoption {
  private static final int PAGE = 5_000;

  private AuditAdoption() {}

  /**
   * Adopts every tenant that has rows but no audit entry yet; returns those it adopted (their
   * projections predate scope keys too and want a rebuild).
   */
  public static List<String> adoptAll(ServerStore store, Clock clock) {
    AuditedStore audited = AuditedStore.wrap(store, clock);
    List<String> adopted = new ArrayList<>();
    for (String tenant : store.tenantIds()) {
      List<LoggedMutation> log = new ArrayList<>();
      List<OutcomeRow> outcomes = new ArrayList<>();
      // Read before the write transaction (one connection at a time); the transaction then checks
      // that nothing was written in between.
      long head = store.read(tenant, r -> {
        if (!r.auditHead().equals(AuditHead.EMPTY)) {
          return -1L;
        }
        for (long after = 0; ; ) {
          List<LoggedMutation> page = r.logged(after, PAGE);
          log.addAll(page);
          if (page.size() < PAGE) {
            break;
          }
          after = page.get(page.size() - 1).seq();
        }
        for (long after = 0; ; ) {
          List<OutcomeRow> page = r.outcomeRows(after, PAGE);
          outcomes.addAll(page);
          if (page.size() < PAGE) {
            break;
          }
          after = page.get(page.size() - 1).seq();
        }
        return Math.max(log.isEmpty() ? 0 : log.get(log.size() - 1).seq(), outcomes.isEmpty() ? 0 : outcomes.get(outcomes.size() - 1).seq());
      });
      if (head <= 0) {
        continue;
      }
      boolean done = audited.transact(tenant, Actors.system(), tx -> {
        if (!tx.auditHead().equals(AuditHead.EMPTY) || tx.head() != head) {
          return false; // written to meanwhile (another instance starting): adopt at the next start
        }
        tx.vouch(log, outcomes);
        tx.action(Json.mapper().createObjectNode().put("type", "audit.adopted").put("logEntries", log.size())
            .put("outcomes", outcomes.size()));
        return true;
      });
      if (done) {
        adopted.add(tenant);
      }
    }
    return adopted;
  }
}
