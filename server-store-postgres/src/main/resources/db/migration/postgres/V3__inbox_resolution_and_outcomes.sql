-- CivicSync on PostgreSQL, schema version 3: resolving the supervisor inbox and per-device order
-- (issue 3).
--
-- inbox_items already has resolved_at and resolution (V2); resolving an item fills them in.
--
-- * outcomes: a mutation's final result when it changed after the first answer (a parked change
--   resolved, a held change applied). Devices read their own with GET /v1/sync/outcomes, and a
--   replay of such a mutation answers with its latest outcome instead of the first result.
-- * device_progress and held_mutations: the per-device hold queue (mutations that arrived after
--   a gap in deviceSeq wait there until it fills).

-- seq comes from the tenant's change counter, like the seqs of the log and the projection, so
-- outcomes sort into the tenant's order of changes. result is text, not jsonb, for the same
-- reason as mutation_log.result: it is returned byte for byte as first stored. Like the log,
-- rows are only written while the tenant's tenant_heads row is locked, so there is no foreign
-- key to tenants.
CREATE TABLE outcomes (
  tenant_id   text COLLATE "C" NOT NULL,
  seq         bigint NOT NULL CHECK (seq > 0),
  device_id   uuid,
  mutation_id uuid,
  result      text NOT NULL,
  at          timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);

-- "This device's outcomes after seq N, in seq order": one index range scan.
CREATE INDEX outcomes_tenant_device_seq ON outcomes (tenant_id, device_id, seq);

-- "The latest outcome of each of these mutations" (replays): the highest seq per mutation.
CREATE INDEX outcomes_tenant_mutation_seq ON outcomes (tenant_id, mutation_id, seq);

-- Per-device order (the hold queue). A device's mutations are processed in deviceSeq order; one
-- arriving after a gap waits in held_mutations until the gap fills (or its hold window ends and
-- it is forced through). Like the log, both tables are only written while the tenant's
-- tenant_heads row is locked, so there is no foreign key to tenants; nor to devices, whose rows
-- are not locked by a push.

-- device_progress: the highest deviceSeq up to which every mutation of the device has been
-- processed. No row means 0. It only ever grows (the upsert keeps the greater value).
CREATE TABLE device_progress (
  tenant_id text COLLATE "C" NOT NULL,
  device_id uuid NOT NULL,
  progress  bigint NOT NULL CHECK (progress >= 0),
  PRIMARY KEY (tenant_id, device_id)
);

-- held_mutations: mutations waiting for a gap before them to fill. mutation is text, not jsonb,
-- like mutation_log.mutation: it is read back as exactly the mutation the device sent, and
-- content_hash is what a replay of it is compared against. The primary key makes the findHeld
-- lookup (by mutation id) an index probe and refuses to hold one mutation twice.
CREATE TABLE held_mutations (
  tenant_id    text COLLATE "C" NOT NULL,
  mutation_id  uuid NOT NULL,
  device_id    uuid NOT NULL,
  device_seq   bigint NOT NULL,
  mutation     text NOT NULL,
  content_hash text NOT NULL,
  received_at  timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, mutation_id)
);

-- "This device's held mutations in deviceSeq order" (every push reads it): one index range scan.
CREATE INDEX held_mutations_tenant_device_seq ON held_mutations (tenant_id, device_id, device_seq);

-- The hold-window sweeper: "devices, across tenants, holding a mutation received before T" is a
-- range scan of the oldest entries, whatever the number of tenants.
CREATE INDEX held_mutations_received_at ON held_mutations (received_at);
