-- CivicSync on PostgreSQL, schema version 5: notes on log entries.
--
-- * mutation_log.note: what the server adds to the audit trail of a change it originated, e.g.
--   for a supervisor's resolution {"inboxItem", "resolution", "comment"}; NULL for a device's own
--   mutation, and so for every entry written before this migration.
--
-- text, like mutation, result and after_state: log entries come back byte for byte as written,
-- which a hash chain over the log (issue 4) will rely on.

-- Nullable without a default: PostgreSQL adds the column without rewriting the table.
ALTER TABLE mutation_log ADD COLUMN note text;
