package org.civicsync.testing.link;

/** The faults a {@link FaultyLink} injects; see {@link LinkProfile} for what each one does. */
public enum FaultKind {
  /** A packet lost, emulated as a reset of both sides of the connection. */
  LOSS,
  /** The request reached the server and was answered; the answer was dropped, the client reset. */
  LOST_ACK,
  /** The complete request was sent to the server a second time, on a connection of its own. */
  DUPLICATE_REQUEST,
  /** Part of the request was forwarded, then both sides were reset. */
  RESET_MID_REQUEST,
  /** The response was held back for an extra time. */
  DELAY_RESPONSE,
  /** The request was held back so that connections opened later could overtake it. */
  REORDER
}
