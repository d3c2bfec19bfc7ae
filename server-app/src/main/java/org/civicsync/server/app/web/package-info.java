/**
 * Serves the offline-first web app (the build of {@code web/}) at {@code /}: its files from the
 * {@code civicsync-web} artifact on the class path, or from a directory while the app is being
 * developed, with cache headers that let the service worker keep the app shell for offline use.
 */
package org.civicsync.server.app.web;
