package org.civicsync.core.validation;

/**
 * A place where JSON breaks its schema.
 *
 * @param pointer JSON Pointer to the offending value (for a missing property, where it should be)
 * @param message what is wrong, for people
 */
public record Violation(String pointer, String message) {}
