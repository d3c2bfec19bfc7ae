/**
 * Hybrid logical clocks: timestamps that follow wall-clock time but never run backwards and break
 * ties by device, so "last writer" is decided without trusting any one device's clock.
 */
package org.civicsync.core.clock;
