-- CivicSync on PostgreSQL, schema version 6: identity, roles and scopes, the audit chain (issue 4).
--
-- * enrollment_codes.user_id, devices.user_id: the user a code enrolls a device for, and the user
--   a device was enrolled for (NULL for API clients and for rows written before users existed).
-- * devices.token_expires_at, devices.revoked_at: tokens now expire (NULL: never, as for API
--   clients and every token issued before this migration) and devices can be revoked.
-- * users, org_units: the people of a tenant with their roles and org units, and the org-unit
--   tree records are scoped to.
-- * challenges: single-use challenges a device signs to get a new token.
-- * scope_snapshots: the set of scope keys a device could see when a cursor was issued.
-- * records.scope_key and scope_moves: the scope key of each projection row (what pulls filter
--   on), and the records that left a scope key (what tells a device a record left its scope).
-- * audit_log and tenant_heads.audit_seq / audit_hash: a per-tenant hash chain of what each write
--   transaction did, and its last link.
--
-- Like the log and the projection, the tables written inside a tenant's write transaction (users,
-- org_units, scope_moves, audit_log) have no foreign key to tenants: rows are only written while
-- the tenant's tenant_heads row is locked, which already proves the tenant exists. challenges and
-- scope_snapshots are written outside write transactions, but only for devices and tenants the
-- server has just authenticated; they carry no foreign key either, so that a challenge or a
-- snapshot never costs a key check on the request path.

-- Nullable without a default: PostgreSQL adds the columns without rewriting the tables.
ALTER TABLE enrollment_codes ADD COLUMN user_id text COLLATE "C";

ALTER TABLE devices
  ADD COLUMN user_id          text COLLATE "C",
  ADD COLUMN token_expires_at timestamptz,
  ADD COLUMN revoked_at       timestamptz;

-- "Every device of the tenant by enrollment time": one index range scan in order. It serves
-- every lookup devices_tenant (V1) served, which therefore goes.
CREATE INDEX devices_tenant_enrolled ON devices (tenant_id, enrolled_at, device_id);
DROP INDEX devices_tenant;

-- roles and org_units are text arrays: they keep their order, and come back as the lists stored.
CREATE TABLE users (
  tenant_id  text COLLATE "C" NOT NULL,
  user_id    text COLLATE "C" NOT NULL,
  roles      text[] NOT NULL,
  org_units  text[] NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);

-- A root unit has no parent. The parent is not a foreign key: units are put one at a time, in
-- any order, and the server checks the tree.
CREATE TABLE org_units (
  tenant_id   text COLLATE "C" NOT NULL,
  org_unit_id text COLLATE "C" NOT NULL,
  parent      text COLLATE "C",
  name        text NOT NULL,
  updated_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, org_unit_id)
);

-- Taken with one DELETE ... RETURNING by (device_id, challenge), which also drops the device's
-- expired ones: both are a range of the primary key.
CREATE TABLE challenges (
  device_id  uuid NOT NULL,
  challenge  text COLLATE "C" NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (device_id, challenge)
);

-- Written once per id (the id is derived from the keys), never changed.
CREATE TABLE scope_snapshots (
  tenant_id   text COLLATE "C" NOT NULL,
  snapshot_id text COLLATE "C" NOT NULL,
  keys        text[] NOT NULL,
  PRIMARY KEY (tenant_id, snapshot_id)
);

-- NULL for a collection without a scope field, '' for a scoped record without a value.
ALTER TABLE records ADD COLUMN scope_key text COLLATE "C";

-- Scoped pulls: "rows of these scope keys after seq N, in seq order".
CREATE INDEX records_tenant_scope_seq ON records (tenant_id, scope_key, seq);

-- A record's scope key changed from from_key at seq. The primary key serves the pull's "moves
-- after seq N, in seq order" as a range scan.
CREATE TABLE scope_moves (
  tenant_id  text COLLATE "C" NOT NULL,
  seq        bigint NOT NULL CHECK (seq > 0),
  collection text COLLATE "C" NOT NULL,
  record_id  uuid NOT NULL,
  from_key   text COLLATE "C" NOT NULL,
  PRIMARY KEY (tenant_id, seq, collection, record_id, from_key)
);

-- The history of one record: its log entries in seq order, one index range scan.
CREATE INDEX mutation_log_record_seq ON mutation_log (tenant_id, collection, record_id, seq);

-- The audit chain. content is text, never jsonb: it is canonical JSON that the chain's hashes
-- cover, and must come back byte for byte (jsonb would reorder keys and reformat numbers).
CREATE TABLE audit_log (
  tenant_id text COLLATE "C" NOT NULL,
  seq       bigint NOT NULL CHECK (seq > 0),
  at        timestamptz NOT NULL,
  content   text NOT NULL,
  prev_hash text NOT NULL,
  hash      text NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);

-- The chain's head sits on the tenant's counter row, so the statement that takes a write
-- transaction's lock reads it too, and an append moves it under that same lock.
-- Constant defaults: PostgreSQL 11+ adds the columns without rewriting the table.
ALTER TABLE tenant_heads
  ADD COLUMN audit_seq  bigint NOT NULL DEFAULT 0 CHECK (audit_seq >= 0),
  ADD COLUMN audit_hash text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
