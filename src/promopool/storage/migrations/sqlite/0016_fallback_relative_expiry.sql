-- Fallbacks and relative expiry (issue 18), pool settings.
-- `fallback_code`: a shared code an empty pool answers with (never stored as a code, never marked issued).
-- `fallback_pool_id`: claims continue from this pool of the same account once this one is empty (a deleted
-- fallback pool switches the fallback off rather than block the delete).
-- `fallback_since`: when the pool started serving its fallback (its `pool.fallback` event was queued then);
-- an import clears it, so the next time the pool runs dry is announced again.
-- `valid_for_seconds`: a claimed code expires this long after its `issued_at`. Computed where a code is
-- read, never stored on the code: a claim writes nothing more, and a code put back is not left carrying an
-- expiry it earned while handed out.
ALTER TABLE pools ADD COLUMN fallback_code TEXT;
ALTER TABLE pools ADD COLUMN fallback_pool_id INTEGER REFERENCES pools (id) ON DELETE SET NULL;
ALTER TABLE pools ADD COLUMN fallback_since TEXT;
ALTER TABLE pools ADD COLUMN valid_for_seconds INTEGER CHECK (valid_for_seconds >= 1);
