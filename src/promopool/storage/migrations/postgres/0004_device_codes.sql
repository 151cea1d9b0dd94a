-- PersonaClick front-end fetch (issue 3): the code a device (`did`) was given from a pool. A device keeps its
-- code until the code is redeemed; the row is created or replaced in the transaction that claims the code.

CREATE TABLE device_codes (
    pool_id     bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    did         text NOT NULL,
    code_id     bigint NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (pool_id, did)
);

CREATE INDEX device_codes_code ON device_codes (code_id);
