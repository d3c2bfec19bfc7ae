/** Loading collection definitions: the built-in ones plus JSON/YAML files from a directory. */
package org.civicsync.server.collections;
