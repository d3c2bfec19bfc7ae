/**
 * JMH microbenchmarks of the server's hot paths per mutation: canonical hashing, schema
 * validation, signature verification and the merge of a stale change. Runnable alone:
 * {@code bench/run --jmh} (or {@code java -cp … org.openjdk.jmh.Main}).
 */
package org.civicsync.bench.micro;
