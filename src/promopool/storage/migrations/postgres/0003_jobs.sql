-- Background jobs (code generation): progress is committed with each batch, so `done` is always exactly what
-- the job has stored. See docs/design.md, "Generating codes".

CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind         text NOT NULL,                  -- 'generate'
    pool_id      bigint REFERENCES pools (id) ON DELETE SET NULL,
    params       jsonb NOT NULL DEFAULT '{}',    -- what was asked for (the pattern of a generation)
    total        bigint NOT NULL CHECK (total >= 0),
    done         bigint NOT NULL DEFAULT 0 CHECK (done >= 0),
    state        text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'succeeded', 'failed')),
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),  -- heartbeat: moved by every batch while running
    finished_at  timestamptz
);
CREATE INDEX jobs_account ON jobs (account_id, id);
-- One running job per pool (two generations on one pool would race the key-space floor), and the sweep
-- for jobs whose server stopped reads this index.
CREATE UNIQUE INDEX jobs_running_pool ON jobs (pool_id) WHERE state = 'running';
CREATE INDEX jobs_running ON jobs (updated_at) WHERE state = 'running';
