-- CivicSync on PostgreSQL, schema version 7: the transactional outbox of domain events.
--
-- One row per committed change, written in the change's own transaction; the relay publishes
-- unpublished rows to NATS JetStream (Nats-Msg-Id = event_id) and marks them. Rows are kept after
-- publishing, so an operator can see what went out and when.
CREATE TABLE domain_events (
  tenant_id    text COLLATE "C" NOT NULL,
  seq          bigint NOT NULL,
  event_id     uuid NOT NULL,
  subject      text NOT NULL,
  payload      text NOT NULL,
  created_at   timestamptz NOT NULL,
  published_at timestamptz,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX domain_events_unpublished ON domain_events (tenant_id, seq) WHERE published_at IS NULL;
