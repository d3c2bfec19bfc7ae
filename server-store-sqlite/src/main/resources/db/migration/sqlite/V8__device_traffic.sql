-- Bytes per device and day (UTC), for the statistics API (issue 7). Counted by the HTTP layer and
-- added in batches, so a crash may lose the last few seconds of counts; nothing else depends on it.
CREATE TABLE device_traffic (
  tenant_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  day       TEXT NOT NULL,
  bytes_in  INTEGER NOT NULL,
  bytes_out INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, device_id, day)
);
