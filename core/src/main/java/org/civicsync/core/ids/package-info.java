/**
 * Identifiers that clients and servers mint for new records and mutations: UUIDs of version 7,
 * whose time-ordered prefix keeps a store's indexes on them appending near their end instead of
 * touching a random page per row.
 */
package org.civicsync.core.ids;
