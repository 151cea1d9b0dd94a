-- promopool schema, version 1 (PostgreSQL).
-- The claim path is the reason for `seq`, `next_seq` and the counters: see docs/design.md, "The claim path".

CREATE TABLE accounts (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    public_key  text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_hash    text PRIMARY KEY,          -- SHA-256 of the key; the key itself is never stored
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_account ON api_keys (account_id);

CREATE TABLE pools (
    id                 bigserial PRIMARY KEY,
    account_id         bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name               text NOT NULL,
    max_uses           integer NOT NULL DEFAULT 1 CHECK (max_uses >= 1),
    per_profile_limit  integer CHECK (per_profile_limit >= 1),
    expires_at         timestamptz,
    public_fetch       boolean NOT NULL DEFAULT false,
    next_seq           bigint NOT NULL DEFAULT 1,  -- claim cursor: codes below it were already passed over
    last_seq           bigint NOT NULL DEFAULT 0,  -- highest seq handed to a code of this pool
    n_available        bigint NOT NULL DEFAULT 0,  -- exact counters, kept in the same transaction as
    n_issued           bigint NOT NULL DEFAULT 0,  -- every state change so listing never counts rows
    n_redeemed         bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pools_account ON pools (account_id, id);

CREATE TABLE profile_databases (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name)
);

CREATE TABLE profiles (
    id           bigserial PRIMARY KEY,
    database_id  bigint NOT NULL REFERENCES profile_databases (id) ON DELETE CASCADE,
    external_id  text,
    email        text,
    phone        text,
    custom       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX profiles_external ON profiles (database_id, external_id);
CREATE INDEX profiles_email ON profiles (database_id, email);
CREATE INDEX profiles_phone ON profiles (database_id, phone);

CREATE TABLE codes (
    id           bigserial PRIMARY KEY,
    pool_id      bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    seq          bigint NOT NULL,  -- position in the pool's claim queue; a code put back gets a new one
    value        text NOT NULL,
    state        text NOT NULL DEFAULT 'available' CHECK (state IN ('available', 'issued', 'redeemed')),
    description  text NOT NULL DEFAULT '',
    usage_count  integer NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    expires_at   timestamptz,
    issued_at    timestamptz,
    profile_id   bigint REFERENCES profiles (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pool_id, value)
);
-- Claims read forward from the pool's cursor along this index and never look behind it.
CREATE UNIQUE INDEX codes_claim_order ON codes (pool_id, seq);
CREATE INDEX codes_profile ON codes (profile_id) WHERE profile_id IS NOT NULL;

CREATE TABLE redemptions (
    id              bigserial PRIMARY KEY,
    code_id         bigint NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    profile_id      bigint REFERENCES profiles (id) ON DELETE SET NULL,
    order_ref       text,
    amount          numeric,
    metadata        jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    rolled_back_at  timestamptz
);
CREATE INDEX redemptions_code ON redemptions (code_id);

-- Idempotency-Key records: the first request's result, replayed to every retry with the same key.
CREATE TABLE idempotency_keys (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    key         text NOT NULL,
    scope       text NOT NULL,   -- what the key was used for, e.g. 'claim:42'; reuse elsewhere is refused
    result_id   bigint,          -- e.g. the claimed code's id
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (created_at);
