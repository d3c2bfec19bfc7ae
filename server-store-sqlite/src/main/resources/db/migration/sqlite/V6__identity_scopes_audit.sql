-- Issue 4: identity (users, org units, device tokens that expire and can be revoked, challenges),
-- scoped change feeds (each record's scope key, records that left a scope) and the hash-chained
-- audit log. Instants stay ISO-8601 text, lists and key sets JSON text.

-- Who a code enrolls and who a device belongs to; token expiry and revocation.
ALTER TABLE enrollment_codes ADD COLUMN user_id TEXT;
ALTER TABLE devices ADD COLUMN user_id TEXT;
ALTER TABLE devices ADD COLUMN token_expires_at TEXT;
ALTER TABLE devices ADD COLUMN revoked_at TEXT;
CREATE INDEX devices_by_tenant ON devices (tenant_id);

-- People and the org-unit tree. roles and org_units are JSON arrays of strings.
CREATE TABLE users (
  tenant_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL,
  roles      TEXT NOT NULL,
  org_units  TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE org_units (
  tenant_id   TEXT NOT NULL,
  org_unit_id TEXT NOT NULL,
  parent      TEXT,
  name        TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (tenant_id, org_unit_id)
);

-- Single-use challenges a device signs to get a new token (taken once, under the writer lock).
CREATE TABLE challenges (
  device_id  TEXT NOT NULL,
  challenge  TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  PRIMARY KEY (device_id, challenge)
);

-- What a device could see when a cursor was issued: a JSON array of scope keys under a
-- content-derived id; written once.
CREATE TABLE scope_snapshots (
  tenant_id   TEXT NOT NULL,
  snapshot_id TEXT NOT NULL,
  key_set     TEXT NOT NULL,
  PRIMARY KEY (tenant_id, snapshot_id)
);

-- The scope key of each projection row (NULL for a collection without a scope field), and the
-- scoped feed's index.
ALTER TABLE records ADD COLUMN scope_key TEXT;
CREATE INDEX records_feed_by_scope ON records (tenant_id, scope_key, seq);

-- Records whose scope key changed away from from_key at seq.
CREATE TABLE scope_moves (
  tenant_id  TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  collection TEXT NOT NULL,
  record_id  TEXT NOT NULL,
  from_key   TEXT NOT NULL,
  PRIMARY KEY (tenant_id, seq, collection, record_id, from_key)
);

-- A record's history (its audit trail) by seq.
CREATE INDEX mutation_log_by_record ON mutation_log (tenant_id, collection, record_id, seq);

-- The audit chain: content is canonical JSON kept byte for byte; the tenant's head row holds the
-- last link, read with the change counter at the start of every write transaction.
CREATE TABLE audit_log (
  tenant_id TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  at        TEXT NOT NULL,
  content   TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash      TEXT NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
ALTER TABLE tenant_heads ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tenant_heads ADD COLUMN audit_hash TEXT NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000';
