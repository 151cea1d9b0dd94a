-- Operators' tables (issue 9): low-stock alerts, their webhook deliveries, per-account webhook secrets, and
-- hourly activity per pool for the admin chart. Kept out of `pools` so that pool settings evolve apart.

CREATE TABLE pool_alerts (
    pool_id      INTEGER PRIMARY KEY REFERENCES pools (id) ON DELETE CASCADE,
    threshold    INTEGER NOT NULL CHECK (threshold >= 0),
    webhook_url  TEXT
);

CREATE TABLE webhook_secrets (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
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
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_pool ON webhook_deliveries (pool_id, id);
CREATE INDEX webhook_deliveries_age ON webhook_deliveries (created_at);

CREATE TABLE pool_activity (
    pool_id      INTEGER NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    hour         TEXT NOT NULL,
    claims       INTEGER NOT NULL DEFAULT 0,
    redemptions  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (pool_id, hour)
) WITHOUT ROWID;
