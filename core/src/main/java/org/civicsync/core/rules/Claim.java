package org.civicsync.core.rules;

/**
 * A record's hold on one combination of field values under one rule.
 *
 * @param rule the rule's id, unique across collections ({@code <collection>/<name>})
 * @param key a digest of the combination's values (fixed length, safe for any store's index)
 */
public record Claim(String rule, String key) {}
