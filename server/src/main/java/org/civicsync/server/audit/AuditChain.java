package org.civicsync.server.audit;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import org.civicsync.core.canonical.Digests;
import org.civicsync.core.canonical.Jcs;
import org.civicsync.core.json.Json;
import org.civicsync.server.store.LoggedMutation;
import org.civicsync.server.store.OutcomeRow;

/**
 * The hashes of the audit chain (docs/protocol.md, "Audit chain"). An entry's hash is hex
 * SHA-256 of {@code "civicsync-audit-v1\n" + prevHash + "\n" + content}, where content is the
 * entry's canonical JSON; a log row or outcome row is bound to its entry by the SHA-256 of its own
 * canonical JSON (seq included, so moving a row is as visible as changing it). Entries of format
 * 2 bind log rows by {@link #logDigestV2}, which survives compaction of the rows' detail.
 */
public final class AuditChain {
  static final String PREFIX = "civicsync-audit-v1";

  private AuditChain() {}

  /** The hash of an entry with this predecessor and content. */
  public static String entryHash(String prevHash, String content) {
    return Digests.sha256Hex((PREFIX + "\n" + prevHash + "\n" + content).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The digest binding one event-log row to an entry of format 1 (written before compaction
   * existed): it covers the whole row, detail included, so such rows are never compacted.
   */
  public static String logDigest(LoggedMutation e) {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("seq", e.seq());
    o.set("mutation", Json.mapper().valueToTree(e.mutation()));
    o.put("contentHash", e.contentHash());
    o.put("deviceId", e.deviceId().toString());
    o.set("result", Json.mapper().valueToTree(e.result()));
    o.put("receivedAt", micros(e.receivedAt()));
    if (e.after() != null) {
      ObjectNode after = Json.mapper().valueToTree(e.after());
      // Stores keep instants to the microsecond; the digest must not depend on finer ticks.
      after.put("updatedAt", micros(e.after().updatedAt()));
      o.set("after", after);
    }
    if (e.note() != null) {
      o.set("note", e.note());
    }
    return Digests.sha256Hex(Jcs.canonicalBytes(o));
  }

  /**
   * The digest binding one event-log row to an entry of format 2: the row's lasting fields with
   * the mutation stripped of its detail, plus {@link #detailDigest} — taken from the row once
   * compaction has dropped the detail, computed from the detail while it is there. So a compacted
   * row still verifies, and its lasting fields (result, ids, seq) stay covered.
   */
  public static String logDigestV2(LoggedMutation e) {
    return logDigestV2(e, e.compacted() ? e.detailDigest() : detailDigest(e));
  }

  /**
   * The same for a row written in this transaction, whose detail digest was computed from its
   * detail moments ago (it is not recomputed: hashing the detail twice per mutation cost the
   * ingest about 4 % of the server's time).
   */
  static String logDigestV2OfNewRow(LoggedMutation e) {
    if (e.detailDigest() == null) {
      throw new IllegalArgumentException("a new row carries the digest of its detail");
    }
    return logDigestV2(e, e.detailDigest());
  }

  private static String logDigestV2(LoggedMutation e, String detailDigest) {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("seq", e.seq());
    o.set("mutation", Json.mapper().valueToTree(LoggedMutation.withoutDetail(e.mutation())));
    o.put("contentHash", e.contentHash());
    o.put("deviceId", e.deviceId().toString());
    o.set("result", Json.mapper().valueToTree(e.result()));
    o.put("receivedAt", micros(e.receivedAt()));
    if (e.note() != null) {
      o.set("note", e.note());
    }
    o.put("detail", detailDigest);
    return Digests.sha256Hex(Jcs.canonicalBytes(o));
  }

  /**
   * The digest of what compaction may drop from a log row: the mutation's {@code data} and
   * {@code signature} and the after-state. Computed from the detail; meaningless for a row whose
   * detail is gone (use the row's stored {@link LoggedMutation#detailDigest()}).
   */
  public static String detailDigest(LoggedMutation e) {
    ObjectNode o = Json.mapper().createObjectNode();
    if (e.mutation().data() != null) {
      o.set("data", e.mutation().data());
    }
    if (e.mutation().signature() != null) {
      o.put("signature", e.mutation().signature());
    }
    if (e.after() != null) {
      ObjectNode after = Json.mapper().valueToTree(e.after());
      after.put("updatedAt", micros(e.after().updatedAt()));
      o.set("after", after);
    }
    return Digests.sha256Hex(Jcs.canonicalBytes(o));
  }

  /** The digest binding one outcome row to its audit entry. */
  public static String outcomeDigest(OutcomeRow r) {
    ObjectNode o = Json.mapper().createObjectNode();
    o.put("seq", r.seq());
    o.put("deviceId", r.deviceId().toString());
    o.set("result", Json.mapper().valueToTree(r.result()));
    o.put("at", micros(r.at()));
    return Digests.sha256Hex(Jcs.canonicalBytes(o));
  }

  /** Instants at the microsecond precision every store keeps. */
  static String micros(Instant at) {
    return at.truncatedTo(ChronoUnit.MICROS).toString();
  }
}
