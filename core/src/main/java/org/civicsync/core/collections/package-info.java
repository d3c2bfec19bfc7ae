/**
 * Collections are data, not code: a service declares each collection (name and record schema) in a
 * definition, and these classes compile and look them up. The built-in definitions
 * ({@code appointments}, {@code subsidy_claims}) are resources of this package.
 */
package org.civicsync.core.collections;
