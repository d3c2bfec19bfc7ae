-- CivicSync embedded store, protocol v1. Instants are ISO-8601 text (exact round trip);
-- ids are canonical lowercase UUID text; JSON is text.
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE tenants (
  tenant_id  TEXT PRIMARY KEY,
  created_at TEXT NOT NULL
);

-- The per-tenant change counter: the last sequence number handed out. Writers are serialised,
-- so sequence numbers follow commit order (the gap-free feed).
CREATE TABLE tenant_heads (
  tenant_id TEXT PRIMARY KEY REFERENCES tenants (tenant_id),
  head      INTEGER NOT NULL
);

CREATE TABLE enrollment_codes (
  code_hash  TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL REFERENCES tenants (tenant_id),
  label      TEXT,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  max_uses   INTEGER NOT NULL,
  uses       INTEGER NOT NULL
);

CREATE TABLE devices (
  device_id    TEXT PRIMARY KEY,
  tenant_id    TEXT NOT NULL REFERENCES tenants (tenant_id),
  name         TEXT NOT NULL,
  public_key   TEXT,
  token_hash   TEXT NOT NULL UNIQUE,
  enrolled_at  TEXT NOT NULL,
  last_push_at TEXT,
  last_pull_at TEXT
);

-- The append-only event log: every first-seen mutation with the result it got.
CREATE TABLE mutation_log (
  tenant_id    TEXT NOT NULL,
  mutation_id  TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  device_id    TEXT NOT NULL,
  collection   TEXT NOT NULL,
  record_id    TEXT NOT NULL,
  op           TEXT NOT NULL,
  status       TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  mutation     TEXT NOT NULL,
  result       TEXT NOT NULL,
  received_at  TEXT NOT NULL,
  PRIMARY KEY (tenant_id, mutation_id),
  UNIQUE (tenant_id, seq)
);

-- The projection: each record at its latest state, with the sequence number of that change.
CREATE TABLE records (
  tenant_id  TEXT NOT NULL,
  collection TEXT NOT NULL,
  record_id  TEXT NOT NULL,
  version    INTEGER NOT NULL,
  deleted    INTEGER NOT NULL,
  data       TEXT,
  seq        INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, collection, record_id)
);
CREATE UNIQUE INDEX records_feed ON records (tenant_id, seq);
CREATE INDEX records_feed_by_collection ON records (tenant_id, collection, seq);
