-- What the server adds to the audit trail of a change it originated (e.g. a supervisor's
-- resolution: the inbox item, how, and the person's comment).
ALTER TABLE mutation_log ADD COLUMN note TEXT;
