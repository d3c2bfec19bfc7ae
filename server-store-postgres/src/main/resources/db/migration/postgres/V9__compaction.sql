-- CivicSync on PostgreSQL, schema version 9: compaction of tombstones and superseded log detail
-- (issue 7).
--
-- * mutation_log.detail_digest: the digest of the row's detail (the mutation's data and signature,
--   the after-state), written with the row; NULL for rows logged before this version, which are
--   therefore never compacted (their audit digests cover the detail itself).
-- * mutation_log.compacted_at: when compaction dropped the row's detail; NULL while it is there.
-- * tenant_heads.watermark: every tombstone and scope move up to this seq may have been compacted;
--   a pull whose cursor is below it must start again (RESYNC_REQUIRED). It sits on the row a write
--   transaction locks and reads first, so the write path learns it for free.
-- * graveyard: tombstones moved out of the projection. They no longer travel in pulls, but the
--   write path still finds them, so a deleted record id is never created again.

-- Nullable without defaults, and a constant default: no table rewrite.
ALTER TABLE mutation_log
  ADD COLUMN detail_digest text,
  ADD COLUMN compacted_at  timestamptz;

ALTER TABLE tenant_heads ADD COLUMN watermark bigint NOT NULL DEFAULT 0 CHECK (watermark >= 0);

CREATE TABLE graveyard (
  tenant_id  text COLLATE "C" NOT NULL,
  collection text COLLATE "C" NOT NULL,
  record_id  uuid NOT NULL,
  version    bigint NOT NULL CHECK (version >= 1),
  seq        bigint NOT NULL CHECK (seq > 0),
  updated_at timestamptz NOT NULL,
  field_hlc  jsonb NOT NULL,
  scope_key  text COLLATE "C",
  PRIMARY KEY (tenant_id, collection, record_id)
);
