-- CivicSync on PostgreSQL, schema version 2: conflict handling (issue 3).
--
-- * records.field_hlc: per field, the hybrid logical clock of the change that last wrote it (what
--   lastWriterWins and append-only ordering compare against).
-- * mutation_log.record_version / after_state: the record's state after each entry that changed
--   it. A stale change is merged against the state at its baseVersion, found here, and
--   projections are rebuilt from these states instead of re-running the rules.
-- * inbox_items: the supervisor inbox (parked conflicts, later rejections and forced holds).
-- * rule_claims: which records hold which combination of field values under the collections'
--   unique and capacity rules (issue 3), kept in the same transaction as the records.

-- A constant default: PostgreSQL 11+ adds the column without rewriting the table.
ALTER TABLE records ADD COLUMN field_hlc jsonb NOT NULL DEFAULT '{}';

-- after_state is text, not jsonb, like mutation and result: it is read back as the exact
-- RecordState first written (jsonb would reorder keys and could reformat numbers).
ALTER TABLE mutation_log
  ADD COLUMN record_version bigint,
  ADD COLUMN after_state    text,
  ADD CONSTRAINT mutation_log_after_state_with_version CHECK ((record_version IS NULL) = (after_state IS NULL));

-- Entries written before this migration carry no after-state. For the entry that produced each
-- record's current row (V1 gives it the row's seq) the state is exactly that row, so write it
-- from there: a projection rebuild then still reproduces every existing record, and a change
-- made later against a record's current version can still find that version as its base.
-- Versions older than that were never kept and stay unknown.
-- The text is the JSON of org.civicsync.core.records.RecordState; updatedAt in ISO-8601 UTC to
-- the microsecond, which is all timestamptz holds.
UPDATE mutation_log l
   SET record_version = r.version,
       after_state = json_build_object(
         'version',   r.version,
         'deleted',   r.deleted,
         'data',      r.data,
         'updatedAt', to_char(r.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
         'fieldHlc',  r.field_hlc)::text
  FROM records r
 WHERE r.tenant_id = l.tenant_id
   AND r.seq = l.seq
   AND r.collection = l.collection
   AND r.record_id = l.record_id;

-- findVersion: "the state of this record at version N" is one index probe.
CREATE INDEX mutation_log_record_versions ON mutation_log (tenant_id, collection, record_id, record_version);

-- The supervisor inbox. Like the log and the projection, rows are only written while the
-- tenant's tenant_heads row is locked, so there is no foreign key to tenants. mutation_id and
-- device_id are empty for items that no device's mutation caused (e.g. a back-office write).
CREATE TABLE inbox_items (
  tenant_id   text COLLATE "C" NOT NULL,
  id          uuid NOT NULL,
  kind        text COLLATE "C" NOT NULL,
  status      text COLLATE "C" NOT NULL,
  collection  text COLLATE "C" NOT NULL,
  record_id   uuid NOT NULL,
  mutation_id uuid,
  device_id   uuid,
  detail      jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  resolved_at timestamptz,
  resolution  jsonb,
  PRIMARY KEY (tenant_id, id)
);

-- The inbox view: "open items of this tenant, newest first".
CREATE INDEX inbox_items_tenant_status_created ON inbox_items (tenant_id, status, created_at DESC);

-- Claims of the server-authoritative rules (unique, capacity): a row says the record holds the
-- combination of field values digested in claim_key under the rule (ids are "<collection>/<name>").
-- Written with the records they follow from, while the tenant's tenant_heads row is locked, so,
-- like the log and the projection, without a foreign key to tenants. A record's claims are
-- replaced as a whole whenever it changes; a tombstone holds none.
CREATE TABLE rule_claims (
  tenant_id  text COLLATE "C" NOT NULL,
  rule       text COLLATE "C" NOT NULL,
  claim_key  text COLLATE "C" NOT NULL,
  collection text COLLATE "C" NOT NULL,
  record_id  uuid NOT NULL,
  PRIMARY KEY (tenant_id, rule, claim_key, collection, record_id)
);

-- claimHolders ("who holds this claim") is a prefix of the primary key; replacing the claims of
-- the records a push changed looks them up by record here.
CREATE INDEX rule_claims_tenant_record ON rule_claims (tenant_id, collection, record_id);
