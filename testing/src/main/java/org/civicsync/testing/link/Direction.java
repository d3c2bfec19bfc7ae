package org.civicsync.testing.link;

/** Which way bytes travel through a {@link FaultyLink}. */
public enum Direction {
  /** From the client to the server: requests. */
  UP,
  /** From the server to the client: responses. */
  DOWN
}
