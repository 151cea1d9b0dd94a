-- The SuperSaaS dialect's `checksum` credential, MD5(account name + API key), can only be computed while the
-- plaintext key exists: when the key is created. Its SHA-256 is kept here, one row per key (never the
-- checksum itself), so a copy of the database lets nobody authenticate. Keys created before this migration
-- have no row: they cannot use checksum authentication (see docs/dialects/supersaas.md).
CREATE TABLE api_key_checksums (
    key_hash       text PRIMARY KEY REFERENCES api_keys (key_hash) ON DELETE CASCADE,
    checksum_hash  text NOT NULL
);
