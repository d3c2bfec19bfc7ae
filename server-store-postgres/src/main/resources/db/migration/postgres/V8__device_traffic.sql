-- CivicSync on PostgreSQL, schema version 8: bytes per device and day (UTC), for the statistics
-- API. Counted by the HTTP layer and added in batches, so a crash may lose the last few seconds of
-- counts; nothing else depends on it.
CREATE TABLE device_traffic (
  tenant_id text COLLATE "C" NOT NULL,
  device_id uuid NOT NULL,
  day       date NOT NULL,
  bytes_in  bigint NOT NULL,
  bytes_out bigint NOT NULL,
  PRIMARY KEY (tenant_id, device_id, day)
);
