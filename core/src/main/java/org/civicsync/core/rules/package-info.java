/**
 * Server-authoritative rules declared in a collection definition: {@code unique} over fields and
 * {@code capacity} (at most N records per combination of field values). A record that a rule
 * counts holds a {@link org.civicsync.core.rules.Claim} on its combination; the server keeps the
 * claims in the same transaction as the records, so a check is an exact count even under
 * concurrent pushes.
 */
package org.civicsync.core.rules;
