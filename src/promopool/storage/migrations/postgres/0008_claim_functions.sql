-- The claim path as server-side functions (issue 8): a claim batch was five round trips (BEGIN, lock the
-- pool, take, counters, COMMIT) and is now one statement, its own transaction. The algorithm is the one
-- the Python code ran before, statement for statement; each statement still takes its own snapshot (READ
-- COMMITTED, volatile functions), so everything read after the pool row lock is the latest.

-- Takes up to `wanted` codes of a pool whose row the caller holds (SELECT … FOR UPDATE), reading forward
-- from `cursor` along (pool_id, seq): rows behind the cursor, and the dead index entries their updates
-- leave, are never visited again, so the cost does not grow as the pool drains. The cursor moves past every
-- row scanned, taken or not; a code changed by another path (attach, delete) fails the state check on its
-- latest version and is skipped, never handed out twice. No row can appear inside a scanned range meanwhile:
-- new codes and codes put back get a seq above `last_seq`, under the same pool row lock.
-- Then, if the cursor moved: the counters, the hour's activity, and a low-stock event if this batch takes
-- the available count across the pool's alert threshold (exactly one batch sees a crossing, the pool row
-- being held). Returns the taken codes, in no particular order.
CREATE FUNCTION take_codes(
    p_pool_id bigint, p_cursor bigint, p_wanted integer, p_now timestamptz, p_hour timestamptz
) RETURNS SETOF codes
LANGUAGE plpgsql AS $$
DECLARE
    v_cursor  bigint := p_cursor;
    v_scanned bigint;
    v_count   bigint;
    v_taken   bigint := 0;
BEGIN
    WHILE v_taken < p_wanted LOOP
        -- Only the index columns here: a state filter would let a stale row estimate (before ANALYZE has
        -- seen freshly imported codes) turn this into a scan and sort of the whole pool.
        SELECT max(seq) INTO v_scanned
        FROM (SELECT seq FROM codes WHERE pool_id = p_pool_id AND seq >= v_cursor
              ORDER BY seq LIMIT p_wanted - v_taken) AS ahead;
        EXIT WHEN v_scanned IS NULL;  -- nothing ahead of the cursor: the pool is drained
        RETURN QUERY
            UPDATE codes SET state = 'issued', issued_at = p_now
            WHERE pool_id = p_pool_id AND seq BETWEEN v_cursor AND v_scanned AND state = 'available'
              AND (expires_at IS NULL OR expires_at > p_now)
            RETURNING *;
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_taken := v_taken + v_count;
        v_cursor := v_scanned + 1;
    END LOOP;
    IF v_cursor = p_cursor THEN
        RETURN;
    END IF;
    WITH pool AS (
        UPDATE pools SET next_seq = v_cursor, n_available = n_available - v_taken,
                         n_issued = n_issued + v_taken
        WHERE id = p_pool_id RETURNING account_id, name, n_available
    ), activity AS (
        INSERT INTO pool_activity (pool_id, hour, claims)
        SELECT p_pool_id, p_hour, v_taken WHERE v_taken > 0
        ON CONFLICT (pool_id, hour) DO UPDATE SET claims = pool_activity.claims + excluded.claims
    )
    INSERT INTO webhook_deliveries (account_id, pool_id, event, url, data, next_attempt_at, created_at)
    SELECT pool.account_id, a.pool_id, 'pool.low_stock', a.webhook_url,
           jsonb_build_object('pool_id', a.pool_id, 'pool_name', pool.name, 'available', pool.n_available,
                              'threshold', a.threshold),
           p_now, p_now
    FROM pool JOIN pool_alerts a ON a.pool_id = p_pool_id
    WHERE a.webhook_url IS NOT NULL
      AND pool.n_available <= a.threshold AND pool.n_available + v_taken > a.threshold;
END
$$;

-- Locks the account's pool row for a claim, which orders the claims of one pool across processes and
-- servers, and returns its cursor; a missing or expired pool is refused with promopool's own SQLSTATEs
-- (class PP), which the storage layer maps to the domain's errors.
CREATE FUNCTION lock_claimable_pool(p_account_id bigint, p_pool_id bigint, p_now timestamptz)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_next    bigint;
    v_expires timestamptz;
BEGIN
    SELECT next_seq, expires_at INTO v_next, v_expires
    FROM pools WHERE id = p_pool_id AND account_id = p_account_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pool % not found', p_pool_id USING ERRCODE = 'PP404';
    END IF;
    IF v_expires IS NOT NULL AND v_expires <= p_now THEN
        RAISE EXCEPTION 'pool % has expired', p_pool_id USING ERRCODE = 'PP410';
    END IF;
    RETURN v_next;
END
$$;

-- A whole claim batch without Idempotency-Keys, in one statement.
CREATE FUNCTION claim_codes(
    p_account_id bigint, p_pool_id bigint, p_wanted integer, p_now timestamptz, p_hour timestamptz
) RETURNS SETOF codes
LANGUAGE sql AS $$
    SELECT * FROM take_codes(p_pool_id, lock_claimable_pool(p_account_id, p_pool_id, p_now), p_wanted,
                             p_now, p_hour)
$$;
