/**
 * Checking JSON against JSON Schema 2020-12 (with format assertions on): the contract's message
 * schemas and each collection's record schema. Reports the first problem as a catalogue error with
 * a JSON Pointer to the offending place.
 */
package org.civicsync.core.validation;
