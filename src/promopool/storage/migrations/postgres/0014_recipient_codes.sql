-- Recipient-bound claims (issue 18): the code a recipient was given from a pool. A recipient keeps its code
-- for as long as the pool exists; the row is written in the transaction that claims the code, under the pool's
-- row, so concurrent claims for one recipient (any process, any server) take one code. A claim with a lease
-- binds the lease too: when the lease is released or runs out, the row goes with it.

CREATE TABLE recipient_codes (
    pool_id     bigint NOT NULL REFERENCES pools (id) ON DELETE CASCADE,
    recipient   text NOT NULL,
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,  -- the pool's, for the listing
    code_id     bigint NOT NULL REFERENCES codes (id) ON DELETE CASCADE,
    lease_id    bigint REFERENCES leases (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (pool_id, recipient)
);

-- GET /v1/recipients/{recipient}/codes: one recipient's codes across the account's pools, in pool order.
CREATE INDEX recipient_codes_listing ON recipient_codes (account_id, recipient, pool_id);
CREATE INDEX recipient_codes_code ON recipient_codes (code_id);
CREATE INDEX recipient_codes_lease ON recipient_codes (lease_id) WHERE lease_id IS NOT NULL;
