-- Final results that changed after their first answer (a parked change resolved, a held change
-- applied): the outcomes feed of each device, and what a replay answers from then on.
CREATE TABLE outcomes (
  tenant_id   TEXT NOT NULL,
  seq         INTEGER NOT NULL,
  device_id   TEXT NOT NULL,
  mutation_id TEXT NOT NULL,
  result      TEXT NOT NULL,
  at          TEXT NOT NULL,
  PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX outcomes_by_device ON outcomes (tenant_id, device_id, seq);
CREATE INDEX outcomes_by_mutation ON outcomes (tenant_id, mutation_id, seq);

-- Per-device order: how far each device's mutations have been processed, and those that arrived
-- after a gap and wait for it to fill.
CREATE TABLE device_progress (
  tenant_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  progress  INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, device_id)
);

CREATE TABLE held_mutations (
  tenant_id    TEXT NOT NULL,
  mutation_id  TEXT NOT NULL,
  device_id    TEXT NOT NULL,
  device_seq   INTEGER NOT NULL,
  mutation     TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  received_at  TEXT NOT NULL,
  PRIMARY KEY (tenant_id, mutation_id)
);
CREATE INDEX held_by_device ON held_mutations (tenant_id, device_id, device_seq);
CREATE INDEX held_by_age ON held_mutations (received_at);
