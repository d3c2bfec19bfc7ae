package org.civicsync.server.audit;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.function.BiFunction;
import org.civicsync.contracts.AuditVerification;
import org.civicsync.contracts.AuditVerification.BrokenLink;
import org.civicsync.core.json.Json;
import org.civicsync.server.store.AuditEntry;
import org.civicsync.server.store.AuditHead;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutcomeRow;
import org.civicsync.server.store.ReadTx;
import org.civicsync.server.store.ServerStore;

/**
 * Walks a tenant's audit chain on one snapshot and checks, link by link: consecutive seqs, each
 * entry's {@code prevHash} and {@code hash}, and that the event log and the outcomes hold exactly
 * the rows the entries vouch for, in order, with the recorded digests; finally that the tenant's
 * head names the last entry. Rows whose detail compaction dropped verify by the detail digest they
 * kept (entries of format 2). Reports the first link that does not hold. Memory stays bounded: all
 * three tables are read page by page, side by side.
 */
public final class AuditVerifier {
  private static final int PAGE = 1000;

  private final ServerStore store;

  public AuditVerifier(ServerStore store) {
    this.store = store;
  }

  public AuditVerification verify(String tenantId) {
    return store.read(tenantId, rtx -> new Walk(tenantId, rtx).run());
  }

  private static final class Walk {
    private final String tenantId;
    private final ReadTx rtx;
    private final Pager<LoggedMutation> log;
    private final Pager<OutcomeRow> outcomes;
    private long entries;
    private String running = AuditHead.GENESIS_HASH;
    private long lastSeq;

    Walk(String tenantId, ReadTx rtx) {
      this.tenantId = tenantId;
      this.rtx = rtx;
      this.log = new Pager<>(rtx::logged, LoggedMutation::seq);
      this.outcomes = new Pager<>(rtx::outcomeRows, OutcomeRow::seq);
    }

    AuditVerification run() {
      long after = 0;
      while (true) {
        List<AuditEntry> page = rtx.audit(after, PAGE);
        for (AuditEntry e : page) {
          BrokenLink b = check(e);
          if (b != null) {
            return result(b);
          }
          after = e.seq();
        }
        if (page.size() < PAGE) {
          break;
        }
      }
      AuditHead head = rtx.auditHead();
      if (head.seq() > lastSeq) {
        return result(new BrokenLink("audit_log", lastSeq + 1, "entry " + (lastSeq + 1) + " is missing: the tenant's head names entry "
            + head.seq() + " but the chain ends at " + lastSeq));
      }
      if (head.seq() != lastSeq || !head.hash().equals(running)) {
        return result(new BrokenLink("tenant_heads", head.seq(), "the tenant's audit head (seq " + head.seq()
            + ") does not name the last entry of the chain (seq " + lastSeq + "): the head was altered"));
      }
      if (log.peek() != null) {
        return result(new BrokenLink("mutation_log", log.peek().seq(), "the row is not vouched for by any audit entry (inserted, or its seq changed)"));
      }
      if (outcomes.peek() != null) {
        return result(new BrokenLink("outcomes", outcomes.peek().seq(), "the row is not vouched for by any audit entry (inserted, or its seq changed)"));
      }
      return result(null);
    }

    private BrokenLink check(AuditEntry e) {
      long expected = lastSeq + 1;
      if (e.seq() != expected) {
        return new BrokenLink("audit_log", expected, "entry " + expected + " is missing (the next one found is " + e.seq() + ")");
      }
      if (!e.prevHash().equals(running)) {
        return new BrokenLink("audit_log", e.seq(), "prevHash does not match the hash of entry " + (e.seq() - 1));
      }
      if (!AuditChain.entryHash(e.prevHash(), e.content()).equals(e.hash())) {
        return new BrokenLink("audit_log", e.seq(), "the entry's content does not match its hash (altered)");
      }
      JsonNode c;
      try {
        c = Json.mapper().readTree(e.content());
      } catch (Exception ex) {
        return new BrokenLink("audit_log", e.seq(), "the entry's content is not JSON");
      }
      if (c.path("seq").asLong(-1) != e.seq() || !tenantId.equals(c.path("tenantId").asText())) {
        return new BrokenLink("audit_log", e.seq(), "the entry's content names another seq or tenant (moved)");
      }
      int format = c.path("v").asInt(1);
      java.util.function.Function<LoggedMutation, String> logDigest = format >= 2 ? AuditChain::logDigestV2 : AuditChain::logDigest;
      BrokenLink b = match(c.path("log"), log, "mutation_log", logDigest, e.seq());
      if (b == null) {
        b = match(c.path("outcomes"), outcomes, "outcomes", AuditChain::outcomeDigest, e.seq());
      }
      if (b != null) {
        return b;
      }
      entries++;
      running = e.hash();
      lastSeq = e.seq();
      return null;
    }

    private <R> BrokenLink match(JsonNode refs, Pager<R> rows, String table, java.util.function.Function<R, String> digest, long entry) {
      for (JsonNode ref : refs) {
        long seq = ref.path("seq").asLong();
        R row = rows.peek();
        if (row == null || rows.seqOf(row) > seq) {
          return new BrokenLink(table, seq, "the row audit entry " + entry + " vouches for is missing (deleted, or its seq changed)");
        }
        if (rows.seqOf(row) < seq) {
          return new BrokenLink(table, rows.seqOf(row), "the row is not vouched for by any audit entry (inserted, or its seq changed)");
        }
        if (!digest.apply(row).equals(ref.path("digest").asText())) {
          String why = row instanceof LoggedMutation m && m.compacted()
              ? " (its detail was dropped by compaction, and the rest or the kept detail digest does not match)" : " (altered)";
          return new BrokenLink(table, seq, "the row's content does not match the digest audit entry " + entry + " recorded" + why);
        }
        rows.next();
      }
      return null;
    }

    private AuditVerification result(BrokenLink broken) {
      AuditHead head = rtx.auditHead();
      return new AuditVerification(tenantId, broken == null, entries, log.consumed, outcomes.consumed, head.seq(), head.hash(), broken);
    }
  }

  /** Reads rows page by page in seq order. */
  private static final class Pager<R> {
    private final BiFunction<Long, Integer, List<R>> fetch;
    private final java.util.function.ToLongFunction<R> seq;
    private final Deque<R> buffer = new ArrayDeque<>();
    private long after;
    private boolean done;
    long consumed;

    Pager(BiFunction<Long, Integer, List<R>> fetch, java.util.function.ToLongFunction<R> seq) {
      this.fetch = fetch;
      this.seq = seq;
    }

    long seqOf(R r) {
      return seq.applyAsLong(r);
    }

    R peek() {
      if (buffer.isEmpty() && !done) {
        List<R> page = fetch.apply(after, PAGE);
        buffer.addAll(page);
        if (!page.isEmpty()) {
          after = seq.applyAsLong(page.get(page.size() - 1));
        }
        done = page.size() < PAGE;
      }
      return buffer.peek();
    }

    void next() {
      buffer.poll();
      consumed++;
    }
  }
}
