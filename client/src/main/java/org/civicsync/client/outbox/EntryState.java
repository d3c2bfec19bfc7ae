package org.civicsync.client.outbox;

import java.util.EnumSet;
import java.util.Locale;
import java.util.Set;

/**
 * Where an outbox entry stands. {@code pending} entries wait to be sent; {@code sending} ones are in
 * a push whose answer has not arrived — after a crash or a lost answer they stay {@code sending}
 * and go again with the next push, unchanged (same mutation id, same signed bytes), and the
 * server's idempotency gives the first answer; the rest are the server's answers. {@code applied} entries are removed at once, so they are only ever seen in transit.
 */
public enum EntryState {
  /** Written locally, not sent yet: edits of its record still fold into it. */
  PENDING,
  /** In a push whose answer has not arrived. */
  SENDING,
  /** The server applied it (directly or merged); the entry is cleared. */
  APPLIED,
  /** The server holds it until an earlier mutation of this device arrives. */
  HELD,
  /** The server parked it for a person to resolve; its final outcome arrives later. */
  CONFLICT,
  /** The server refused it; the record was rolled back to the server's state. */
  REJECTED;

  /** States whose entry still awaits a final answer from the server. */
  public static final Set<EntryState> UNSETTLED = EnumSet.of(PENDING, SENDING, HELD, CONFLICT);

  public String wire() {
    return name().toLowerCase(Locale.ROOT);
  }
}
