-- Several named keys per account (issue 17): each key gains a public id (what `keys list` shows and
-- `DELETE /v1/keys/{id}` takes; the digest stays unique, api_key_checksums points at it), a name, a read-only
-- flag and when it was last used. Keys made before this migration are named 'initial key'.
--
-- The id is pointed at (by clients, and by `keys revoke`), so it is never given out again: AUTOINCREMENT,
-- which SQLite cannot add in place. The table is rebuilt as in 0009: created anew, its rows copied, the old one
-- dropped and the new one renamed (the migrator runs with foreign keys off and checks them before it commits).

CREATE TABLE api_keys_rebuilt (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key_hash      TEXT NOT NULL UNIQUE,
    account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    read_only     INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
);
INSERT INTO api_keys_rebuilt (key_hash, account_id, name, created_at)
SELECT key_hash, account_id, 'initial key', created_at FROM api_keys ORDER BY created_at, key_hash;
DROP TABLE api_keys;
ALTER TABLE api_keys_rebuilt RENAME TO api_keys;
CREATE INDEX api_keys_account ON api_keys (account_id);
