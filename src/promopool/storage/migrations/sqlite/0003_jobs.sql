-- Background jobs (code generation): progress is committed with each batch, so `done` is always exactly what
-- the job has stored. See docs/design.md, "Generating codes".

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    pool_id      INTEGER REFERENCES pools (id) ON DELETE SET NULL,
    params       TEXT NOT NULL DEFAULT '{}',
    total        INTEGER NOT NULL CHECK (total >= 0),
    done         INTEGER NOT NULL DEFAULT 0 CHECK (done >= 0),
    state        TEXT NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    error        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    finished_at  TEXT
);
CREATE INDEX jobs_account ON jobs (account_id, id);
CREATE UNIQUE INDEX jobs_running_pool ON jobs (pool_id) WHERE state = 'running';
CREATE INDEX jobs_running ON jobs (updated_at) WHERE state = 'running';
