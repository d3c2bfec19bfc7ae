-- Conflict handling: per-field clocks on records, the after-state of every change in the log
-- (the base of any later stale change, and what projections are rebuilt from), the inbox.
ALTER TABLE records ADD COLUMN field_hlc TEXT NOT NULL DEFAULT '{}';

ALTER TABLE mutation_log ADD COLUMN record_version INTEGER;
ALTER TABLE mutation_log ADD COLUMN after_state TEXT;
CREATE INDEX mutation_log_versions ON mutation_log (tenant_id, collection, record_id, record_version);

CREATE TABLE inbox_items (
  tenant_id   TEXT NOT NULL,
  id          TEXT NOT NULL,
  kind        TEXT NOT NULL,
  status      TEXT NOT NULL,
  collection  TEXT NOT NULL,
  record_id   TEXT NOT NULL,
  mutation_id TEXT,
  device_id   TEXT,
  detail      TEXT NOT NULL,
  created_at  TEXT NOT NULL,
  resolved_at TEXT,
  resolution  TEXT,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX inbox_by_status ON inbox_items (tenant_id, status, created_at);

-- Rows logged before this version carry no after-state; the projection row each entry produced is
-- exactly that state, so rebuilds and merges keep working for records created before the upgrade.
UPDATE mutation_log
   SET record_version = (SELECT r.version FROM records r WHERE r.tenant_id = mutation_log.tenant_id AND r.seq = mutation_log.seq),
       after_state = (SELECT json_object('version', r.version, 'deleted', json(CASE WHEN r.deleted THEN 'true' ELSE 'false' END),
                                         'data', json(r.data), 'updatedAt', r.updated_at, 'fieldHlc', json('{}'))
                        FROM records r WHERE r.tenant_id = mutation_log.tenant_id AND r.seq = mutation_log.seq)
 WHERE after_state IS NULL
   AND EXISTS (SELECT 1 FROM records r WHERE r.tenant_id = mutation_log.tenant_id AND r.seq = mutation_log.seq);

-- Claims of server-authoritative rules (unique, capacity): which records hold which combination
-- of field values under which rule, kept in the same transaction as the records.
CREATE TABLE rule_claims (
  tenant_id  TEXT NOT NULL,
  rule       TEXT NOT NULL,
  claim_key  TEXT NOT NULL,
  collection TEXT NOT NULL,
  record_id  TEXT NOT NULL,
  PRIMARY KEY (tenant_id, rule, claim_key, collection, record_id)
);
CREATE INDEX rule_claims_by_record ON rule_claims (tenant_id, collection, record_id);
