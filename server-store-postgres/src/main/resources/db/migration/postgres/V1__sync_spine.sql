-- CivicSync on PostgreSQL, schema version 1: tenants, devices, the event log and the projection.
--
-- Flyway runs this inside the configured schema (search_path), so names are unqualified.
-- Identifier-like text columns use the "C" collation: comparisons and ORDER BY are then plain
-- byte order, the same on every server whatever its locale, and index lookups are cheaper.

CREATE TABLE tenants (
  tenant_id  text COLLATE "C" PRIMARY KEY,
  created_at timestamptz NOT NULL
);

-- The per-tenant change counter. Every write transaction of a tenant begins by locking its row
-- (SELECT ... FOR UPDATE) and advances it before commit; the lock is what orders a tenant's
-- commits and therefore its sequence numbers, which keeps the change feed gap-free.
CREATE TABLE tenant_heads (
  tenant_id text COLLATE "C" PRIMARY KEY REFERENCES tenants (tenant_id),
  head      bigint NOT NULL DEFAULT 0 CHECK (head >= 0)
);

-- The append-only event log: every mutation received, with the result it got. The result is
-- kept as text, not jsonb, so that a replay returns the first answer byte for byte; so is the
-- mutation, which is the audit record of what the device sent.
-- No foreign key to tenants here or on records: rows are only ever written while the tenant's
-- tenant_heads row is locked, which already proves the tenant exists, and a key check per row
-- would sit on the ingest hot path.
CREATE TABLE mutation_log (
  tenant_id    text COLLATE "C" NOT NULL,
  mutation_id  uuid NOT NULL,
  seq          bigint NOT NULL CHECK (seq > 0),
  device_id    uuid NOT NULL,
  collection   text COLLATE "C" NOT NULL,
  record_id    uuid NOT NULL,
  op           text NOT NULL,
  content_hash text NOT NULL,
  mutation     text NOT NULL,
  result       text NOT NULL,
  status       text NOT NULL,
  received_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, mutation_id),
  CONSTRAINT mutation_log_tenant_seq UNIQUE (tenant_id, seq)
);

-- The projection (read model): each record at its latest state, carrying the sequence number of
-- the change that produced it. A tombstone keeps its row with data NULL.
CREATE TABLE records (
  tenant_id  text COLLATE "C" NOT NULL,
  collection text COLLATE "C" NOT NULL,
  record_id  uuid NOT NULL,
  version    bigint NOT NULL CHECK (version >= 1),
  deleted    boolean NOT NULL,
  data       jsonb,
  seq        bigint NOT NULL CHECK (seq > 0),
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, collection, record_id),
  CONSTRAINT records_data_absent_exactly_when_deleted CHECK (deleted = (data IS NULL))
);

-- The pull path: "changes after seq N, in seq order". Unique because each sequence number is
-- given to one mutation, which changes at most one record; a duplicate would be a bug.
CREATE UNIQUE INDEX records_tenant_seq ON records (tenant_id, seq);
-- Pulls filtered to one collection walk this index in order instead of skipping the others'
-- rows in records_tenant_seq.
CREATE INDEX records_tenant_collection_seq ON records (tenant_id, collection, seq);

-- Only the SHA-256 of the normalised code is stored, never the code.
CREATE TABLE enrollment_codes (
  code_hash  text PRIMARY KEY,
  tenant_id  text COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
  label      text,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  max_uses   integer NOT NULL CHECK (max_uses >= 0),
  uses       integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses)
);

-- Device tokens are stored only as their SHA-256.
CREATE TABLE devices (
  device_id    uuid PRIMARY KEY,
  tenant_id    text COLLATE "C" NOT NULL REFERENCES tenants (tenant_id),
  name         text NOT NULL,
  public_key   text,
  token_hash   text NOT NULL UNIQUE,
  enrolled_at  timestamptz NOT NULL,
  last_push_at timestamptz,
  last_pull_at timestamptz
);

CREATE INDEX devices_tenant ON devices (tenant_id);

-- Server-wide settings, such as the admin token's hash.
CREATE TABLE settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);
