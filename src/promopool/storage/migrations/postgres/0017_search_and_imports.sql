-- The admin search across an account (issue 20) and imports in the activity chart.
-- A code prefix is read per pool as a range of lookup keys in byte order (COLLATE "C": whatever the
-- database's locale, the keys of one prefix are one contiguous range), a few per pool.
CREATE INDEX codes_pool_prefix ON codes (pool_id, (lookup_key COLLATE "C"));
-- Redemptions found by order reference or by the profile that made them.
CREATE INDEX redemptions_order ON redemptions (order_ref) WHERE order_ref IS NOT NULL;
CREATE INDEX redemptions_profile ON redemptions (profile_id) WHERE profile_id IS NOT NULL;
-- Codes added per pool and hour, counted by the import's transaction (history starts with this migration).
ALTER TABLE pool_activity ADD COLUMN imports bigint NOT NULL DEFAULT 0;
