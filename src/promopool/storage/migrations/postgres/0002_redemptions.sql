-- promopool schema, version 2 (PostgreSQL): redemptions with exact limits, leases, code normalization.
-- How these are used: docs/design.md, "Redemptions", "Leases", "Code normalization".

-- How a typed code finds a stored one, and whether an attached code may be used by its holder only.
ALTER TABLE pools
    ADD COLUMN case_insensitive   boolean NOT NULL DEFAULT false,
    ADD COLUMN ignore_separators  boolean NOT NULL DEFAULT false,
    ADD COLUMN holder_only        boolean NOT NULL DEFAULT false;

-- The coarsest form of a code any pool setting can ask for: ASCII letters upper-cased, dashes and spaces
-- removed (translate, not upper: the same on every locale). Computed by the database, so every insert path
-- has it; it must equal promopool.domain.normalization.lookup_key. Lookups read the few codes sharing it.
ALTER TABLE codes ADD COLUMN lookup_key text
    GENERATED ALWAYS AS (translate(value, 'abcdefghijklmnopqrstuvwxyz- ', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ')) STORED;
CREATE INDEX codes_lookup ON codes (lookup_key, pool_id);

-- Redemptions name a profile by its external id in the account's `default` profile database.
CREATE UNIQUE INDEX profiles_external_unique ON profiles (database_id, external_id)
    WHERE external_id IS NOT NULL;

-- Unrolled redemptions per pool and profile, changed in the redemption's (or rollback's) transaction by a
-- conditional upsert: the exact count per_profile_limit is checked against.
CREATE TABLE profile_uses (
    pool_id     bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    profile_id  bigint NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
    uses        integer NOT NULL CHECK (uses >= 0),
    PRIMARY KEY (pool_id, profile_id)
);
CREATE INDEX profile_uses_profile ON profile_uses (profile_id);

-- A claim with lease_seconds reserves its code (state 'issued') until expires_at. Confirming keeps it issued;
-- a release or the lease running out puts it back at the pool's tail.
CREATE TABLE leases (
    id          bigserial PRIMARY KEY,
    code_id     bigint NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    state       text NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'confirmed', 'released', 'expired')),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX leases_due ON leases (expires_at) WHERE state = 'active';
CREATE INDEX leases_code ON leases (code_id);
