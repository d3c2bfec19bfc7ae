/**
 * Who may do what: the built-in roles, the actions a collection grants per role, and a user's
 * scope as a set of org units. Pure rules; the server resolves users and org units from its store.
 */
package org.civicsync.core.access;
