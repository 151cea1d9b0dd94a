-- Ids that something points at are never given out again (issue 15). A table whose key is a plain INTEGER
-- PRIMARY KEY gives a new row max(id) + 1, so deleting the last code handed its id to the next code
-- imported, by any account, and an Idempotency-Key replay that followed the id answered with that code.
-- AUTOINCREMENT numbers past the largest id ever used (sqlite_sequence), as PostgreSQL's sequences do.
--
-- Rebuilt: codes (pointed at by idempotency records, leases, redemptions, device codes), leases and
-- redemptions (pointed at by idempotency records), webhook_deliveries (its id is the receivers' dedupe key,
-- X-Promopool-Delivery). pools and jobs have had AUTOINCREMENT from the start; accounts, profiles and profile
-- databases are never deleted. SQLite cannot add AUTOINCREMENT in place: each table is created anew with the
-- same columns, constraints and indexes, its rows copied with their ids, the old one dropped and the new one
-- renamed. The migrator runs this with foreign keys off (dropping codes would otherwise cascade into the
-- tables that point at it) and checks every foreign key before it commits.

CREATE TABLE codes_rebuilt (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
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
    lookup_key   TEXT GENERATED ALWAYS AS (upper(replace(replace(value, '-', ''), ' ', ''))) VIRTUAL,
    UNIQUE (pool_id, value)
);
INSERT INTO codes_rebuilt
    (id, pool_id, seq, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at)
SELECT id, pool_id, seq, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at
FROM codes ORDER BY id;
DROP TABLE codes;
ALTER TABLE codes_rebuilt RENAME TO codes;
CREATE UNIQUE INDEX codes_claim_order ON codes (pool_id, seq);
CREATE INDEX codes_profile ON codes (profile_id) WHERE profile_id IS NOT NULL;
CREATE INDEX codes_lookup ON codes (lookup_key, pool_id);

CREATE TABLE redemptions_rebuilt (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    code_id         INTEGER NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    profile_id      INTEGER REFERENCES profiles (id) ON DELETE SET NULL,
    order_ref       TEXT,
    amount          TEXT,
    metadata        TEXT,
    created_at      TEXT NOT NULL,
    rolled_back_at  TEXT
);
INSERT INTO redemptions_rebuilt SELECT * FROM redemptions ORDER BY id;
DROP TABLE redemptions;
ALTER TABLE redemptions_rebuilt RENAME TO redemptions;
CREATE INDEX redemptions_code ON redemptions (code_id);

CREATE TABLE leases_rebuilt (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    code_id     INTEGER NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    state       TEXT NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'confirmed', 'released', 'expired')),
    expires_at  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    ended_at    TEXT
);
INSERT INTO leases_rebuilt SELECT * FROM leases ORDER BY id;
DROP TABLE leases;
ALTER TABLE leases_rebuilt RENAME TO leases;
CREATE INDEX leases_due ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_code ON leases (code_id);

CREATE TABLE webhook_deliveries_rebuilt (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pool_id          INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    event            TEXT NOT NULL,
    url              TEXT NOT NULL,
    data             TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_attempt_at  TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    delivered_at     TEXT
);
INSERT INTO webhook_deliveries_rebuilt SELECT * FROM webhook_deliveries ORDER BY id;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_rebuilt RENAME TO webhook_deliveries;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_pool ON webhook_deliveries (pool_id, id);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (created_at);

-- The copies set each counter to the largest id present. An idempotency record may still point past it, at
-- a row deleted before this migration: the counters start above those ids too, so none comes back.
INSERT INTO sqlite_sequence (name, seq)
SELECT name, 0 FROM (SELECT 'codes' AS name UNION ALL SELECT 'redemptions' UNION ALL SELECT 'leases')
WHERE name NOT IN (SELECT name FROM sqlite_sequence);
UPDATE sqlite_sequence SET seq = max(seq, coalesce((
    SELECT max(CASE WHEN scope LIKE 'claim:%' THEN result_id ELSE CAST(substr(scope, 8) AS INTEGER) END)
    FROM idempotency_keys WHERE scope LIKE 'claim:%' OR scope LIKE 'redeem:%'), 0))
WHERE name = 'codes';
UPDATE sqlite_sequence SET seq = max(seq, coalesce((
    SELECT max(result_id) FROM idempotency_keys WHERE scope LIKE 'lease:%'), 0))
WHERE name = 'leases';
UPDATE sqlite_sequence SET seq = max(seq, coalesce((
    SELECT max(max(coalesce(result_id, 0), CAST(substr(scope, 10) AS INTEGER)))
    FROM idempotency_keys WHERE scope LIKE 'rollback:%'), 0), coalesce((
    SELECT max(result_id) FROM idempotency_keys WHERE scope LIKE 'redeem:%'), 0))
WHERE name = 'redemptions';
