-- Bulk claims (issue 18): an Idempotency-Key of a bulk claim replays up to 10,000 codes, so its record keeps
-- their ids, in the order they were handed out, as one array beside `result_id` (which keeps the one id of
-- every other keyed write). One row written per bulk claim, where a row per code would be 10,000 index
-- insertions; the record is purged with its key.
ALTER TABLE idempotency_keys ADD COLUMN result_ids bigint[];
