-- promopool schema, version 1 (SQLite). Timestamps are ISO-8601 UTC text written by promopool
-- (fixed width, so they compare correctly as text).

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    public_key  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_hash    TEXT PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE pools (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id         INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name               TEXT NOT NULL,
    max_uses           INTEGER NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
    per_profile_limit  INTEGER CHECK (per_profile_limit >= 1),
    expires_at         TEXT,
    public_fetch       INTEGER NOT NULL DEFAULT 0,
    next_seq           INTEGER NOT NULL DEFAULT 1,
    last_seq           INTEGER NOT NULL DEFAULT 0,
    n_available        INTEGER NOT NULL DEFAULT 0,
    n_issued           INTEGER NOT NULL DEFAULT 0,
    n_redeemed         INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL
);
CREATE INDEX pools_account ON pools (account_id, id);

CREATE TABLE profile_databases (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE profiles (
    id           INTEGER PRIMARY KEY,
    database_id  INTEGER NOT NULL REFERENCES profile_databases (id) ON DELETE CASCADE,
    external_id  TEXT,
    email        TEXT,
    phone        TEXT,
    custom       TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL
);
CREATE INDEX profiles_external ON profiles (database_id, external_id);
CREATE INDEX profiles_email ON profiles (database_id, email);
CREATE INDEX profiles_phone ON profiles (database_id, phone);

CREATE TABLE codes (
    id           INTEGER PRIMARY KEY,
    pool_id      INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    seq          INTEGER NOT NULL,
    value        TEXT NOT NULL,
    state        TEXT NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'issued', 'redeemed')),
    description  TEXT NOT NULL DEFAULT '',
    usage_count  INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    expires_at   TEXT,
    issued_at    TEXT,
    profile_id   INTEGER REFERENCES profiles (id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (pool_id, value)
);
CREATE UNIQUE INDEX codes_claim_order ON codes (pool_id, seq);
CREATE INDEX codes_profile ON codes (profile_id) WHERE profile_id IS NOT NULL;

CREATE TABLE redemptions (
    id              INTEGER PRIMARY KEY,
    code_id         INTEGER NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    profile_id      INTEGER REFERENCES profiles (id) ON DELETE SET NULL,
    order_ref       TEXT,
    amount          TEXT,
    metadata        TEXT,
    created_at      TEXT NOT NULL,
    rolled_back_at  TEXT
);
CREATE INDEX redemptions_code ON redemptions (code_id);

CREATE TABLE idempotency_keys (
    account_id  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    scope       TEXT NOT NULL,
    result_id   INTEGER,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (account_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
