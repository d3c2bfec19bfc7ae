/**
 * How a device reaches the server: the {@link org.civicsync.client.transport.Transport} SPI (one
 * HTTP exchange), its {@code HttpURLConnection} implementation, and {@link
 * org.civicsync.client.transport.ServerApi}, the protocol's calls over any transport.
 */
package org.civicsync.client.transport;
