-- The transactional outbox: one domain event per committed change, written in the change's own
-- transaction and marked when the relay has published it (issue 7). Rows are kept after
-- publishing, so an operator can see what went out and when.
CREATE TABLE domain_events (
  tenant_id    TEXT NOT NULL,
  seq          INTEGER NOT NULL,
  event_id     TEXT NOT NULL,
  subject      TEXT NOT NULL,
  payload      TEXT NOT NULL,
  created_at   TEXT NOT NULL,
  published_at TEXT,
  attempts     INTEGER NOT NULL DEFAULT 0,
  last_error   TEXT,
  PRIMARY KEY (tenant_id, seq)
);
-- What the relay reads: unpublished rows in insertion (commit) order.
CREATE INDEX domain_events_unpublished ON domain_events (published_at) WHERE published_at IS NULL;
