-- Compaction of tombstones and superseded log detail (issue 7).
--
-- * mutation_log.detail_digest: the digest of the row's detail (the mutation's data and signature,
--   the after-state), written with the row; NULL for rows logged before this version, which are
--   therefore never compacted (their audit digests cover the detail itself).
-- * mutation_log.compacted_at: when compaction dropped the row's detail; NULL while it is there.
-- * tenant_heads.watermark: every tombstone and scope move up to this seq may have been compacted;
--   a pull whose cursor is below it must start again (RESYNC_REQUIRED).
-- * graveyard: tombstones moved out of the projection. They no longer travel in pulls, but the
--   write path still finds them, so a deleted record id is never created again.
ALTER TABLE mutation_log ADD COLUMN detail_digest TEXT;
ALTER TABLE mutation_log ADD COLUMN compacted_at TEXT;
ALTER TABLE tenant_heads ADD COLUMN watermark INTEGER NOT NULL DEFAULT 0;
CREATE TABLE graveyard (
  tenant_id  TEXT NOT NULL,
  collection TEXT NOT NULL,
  record_id  TEXT NOT NULL,
  version    INTEGER NOT NULL,
  seq        INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  field_hlc  TEXT NOT NULL,
  scope_key  TEXT,
  PRIMARY KEY (tenant_id, collection, record_id)
);
