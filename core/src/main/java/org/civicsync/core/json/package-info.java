/** The one Jackson configuration every CivicSync component uses for wire JSON. */
package org.civicsync.core.json;
