/**
 * The supervisor inbox (seed 000, principle 5: a human in the loop): parked conflicts and
 * rejections, listed with their full context, and resolved by a person as a new server change
 * that flows to every device, while the device that made the change learns its final outcome.
 */
package org.civicsync.server.inbox;
