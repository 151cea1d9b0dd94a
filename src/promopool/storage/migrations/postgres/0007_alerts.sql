-- Operators' tables (issue 9): low-stock alerts, their webhook deliveries, per-account webhook secrets, and
-- hourly activity per pool for the admin chart. Kept out of `pools` so that pool settings evolve apart.

CREATE TABLE pool_alerts (
    pool_id      bigint PRIMARY KEY REFERENCES pools (id) ON DELETE CASCADE,
    threshold    bigint NOT NULL CHECK (threshold >= 0),  -- an event when a claim takes available to <= this
    webhook_url  text                                     -- NULL: shown on the admin page only, no call
);

CREATE TABLE webhook_secrets (
    account_id  bigint PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret      text NOT NULL,  -- HMAC-SHA256 key of the account's webhook signatures
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per event; inserted in the transaction of the claim batch that crossed the threshold, so a
-- crossing yields exactly one row whatever the concurrency. Delivered by a background task with backoff.
CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pool_id          bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    event            text NOT NULL,
    url              text NOT NULL,
    data             jsonb NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,  -- while pending: when to try (again); a lease moves it forward
    last_attempt_at  timestamptz,
    last_status      integer,               -- the receiver's HTTP status, NULL when it could not be reached
    last_error       text,
    created_at       timestamptz NOT NULL,
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_pool ON webhook_deliveries (pool_id, id);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (created_at);

-- Claims and redemptions per pool and UTC hour, counted in the transactions that make them.
CREATE TABLE pool_activity (
    pool_id      bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    hour         timestamptz NOT NULL,
    claims       bigint NOT NULL DEFAULT 0,
    redemptions  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, hour)
);
