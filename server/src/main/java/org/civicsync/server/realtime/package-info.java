/**
 * Live change notifications for devices: the store's commit notices (from this instance, and
 * through the database from every other) fanned out to the open streams of the devices that may
 * see what changed, so a device pulls as soon as there is something for it instead of polling.
 */
package org.civicsync.server.realtime;
