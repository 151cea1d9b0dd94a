-- promopool schema, version 2 (SQLite): redemptions with exact limits, leases, code normalization.
-- How these are used: docs/design.md, "Redemptions", "Leases", "Code normalization".

ALTER TABLE pools ADD COLUMN case_insensitive INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN ignore_separators INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pools ADD COLUMN holder_only INTEGER NOT NULL DEFAULT 0;

-- The coarsest form of a code any pool setting can ask for: ASCII letters upper-cased (SQLite's upper()
-- folds ASCII only), dashes and spaces removed. Must equal promopool.domain.normalization.lookup_key.
ALTER TABLE codes ADD COLUMN lookup_key TEXT
    GENERATED ALWAYS AS (upper(replace(replace(value, '-', ''), ' ', ''))) VIRTUAL;
CREATE INDEX codes_lookup ON codes (lookup_key, pool_id);

CREATE UNIQUE INDEX profiles_external_unique ON profiles (database_id, external_id)
    WHERE external_id IS NOT NULL;

CREATE TABLE profile_uses (
    pool_id     INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    profile_id  INTEGER NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    uses        INTEGER NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (pool_id, profile_id)
) WITHOUT ROWID;
CREATE INDEX profile_uses_profile ON profile_uses (profile_id);

CREATE TABLE leases (
    id          INTEGER PRIMARY KEY,
    code_id     INTEGER NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    state       TEXT NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'confirmed', 'released', 'expired')),
    expires_at  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX leases_due ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_code ON leases (code_id);
