-- CivicSync on PostgreSQL, schema version 4: API clients and the records API (issue 3).
--
-- * devices.kind: a row of devices is either a field device ('device', which syncs through push
--   and pull) or the credential of an online back-office system ('apiClient', which reads and
--   writes through the records API). Every row written before this migration is a device.
--
-- The records API lists a collection's live records filtered by top-level field values
-- (data ->> field = value) in record_id order. The primary key (tenant_id, collection,
-- record_id) already serves that order and the "after" cursor as a range scan that stops at the
-- LIMIT, so no index is added for it. A GIN index on data was considered and left out: it would
-- serve containment (@>), not the text comparison the API defines (where the string "12" and the
-- number 12 both match "12"), and it would be maintained on every push on the write hot path.

-- A constant default: PostgreSQL 11+ adds the column without rewriting the table.
ALTER TABLE devices
  ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT 'device',
  ADD CONSTRAINT devices_kind CHECK (kind IN ('device', 'apiClient'));
