"""Codes: bulk insert, listing, lookup, deletion (postgres engine)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from promopool.domain import Code, CodeState
from promopool.domain.errors import (
    PoolNotFound,
)
from promopool.domain.export import ExportRow, holder_keys
from promopool.domain.normalization import Normalization, new_values
from promopool.storage.postgres.base import (
    CODE_COLUMNS,
    PostgresBase,
    code_of,
)
from promopool.storage.postgres.lookup import stored_alike
from promopool.storage.postgres.redemptions import _profile_id

# The state each row carries, given to the code its row inserted (a row skipped as a duplicate has no code
# at its seq, and changes nothing).
CARRY_SQL = """
UPDATE codes c SET state = v.state, issued_at = v.issued_at, usage_count = v.usage_count,
    profile_id = v.profile_id
FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::integer[], $6::bigint[])
    AS v (seq, state, issued_at, usage_count, profile_id)
WHERE c.pool_id = $1 AND c.seq = v.seq
RETURNING c.state
"""


async def insert_values(
    conn: asyncpg.Connection,
    pool_id: int,
    values: Sequence[str],
    now: datetime,
    *,
    expect_duplicates: bool = False,
    states: Sequence[ExportRow] | None = None,
) -> int:
    """Insert ``values`` into the pool as available codes numbered in their order, skipping any the pool
    already holds, then give them the ``states`` their rows carry, if given; return how many were
    inserted. Runs inside the caller's transaction."""
    await conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_codes (ord bigint, value text) ON COMMIT DELETE ROWS"
    )
    # Binary COPY into a session-private table first: the pool's row is locked only for the
    # INSERT … SELECT below, not while the batch streams in.
    await conn.copy_records_to_table(
        "import_codes", records=list(enumerate(values, start=1)), columns=["ord", "value"]
    )
    holders: dict[str, int | None] = {}
    if states is not None:
        # Found or created before the pool's row is taken, as a redeem does (no one holding a pool's row
        # waits for a profile).
        account_id = await conn.fetchval("SELECT account_id FROM pools WHERE id = $1", pool_id)
        if account_id is None:
            raise PoolNotFound(pool_id)
        for key in holder_keys(states):
            holders[key] = await _profile_id(conn, account_id, key, create_at=now)
    pool = await conn.fetchrow(
        "SELECT last_seq, case_insensitive, ignore_separators FROM pools WHERE id = $1 FOR UPDATE", pool_id
    )
    if pool is None:
        raise PoolNotFound(pool_id)
    base = pool["last_seq"]
    normalization = Normalization(pool["case_insensitive"], pool["ignore_separators"])
    if normalization.folds:  # a value equal to a stored code under the pool's settings is a duplicate
        fresh = new_values(values, await stored_alike(conn, pool_id, values), normalization)
        await conn.execute(
            "DELETE FROM import_codes WHERE ord <> ALL($1::bigint[])", [i + 1 for i, _ in fresh]
        )
    # Rows go in value order, which keeps the (pool_id, value) index's inserts local; seq keeps the order
    # given (`ord` breaks ties, so of two equal values the first still wins).
    insert = (
        "INSERT INTO codes (pool_id, seq, value, created_at)"
        " SELECT $1, $2 + ord, value, $3 FROM import_codes ORDER BY value, ord"
    )
    status = None
    if not expect_duplicates:
        # Optimistically without ON CONFLICT, whose speculative insertion costs ~20% of an import of new
        # codes; a duplicate undoes just this attempt (a savepoint), and the batch goes in the careful way.
        try:
            async with conn.transaction():
                status = await conn.execute(insert, pool_id, base, now)
        except asyncpg.UniqueViolationError:
            status = None
    if status is None:
        # Naming the one index a duplicate can hit spares the database probing the other unique indexes
        # for every row (a fresh seq or id never collides; if one ever did, that would be a bug worth an
        # error).
        status = await conn.execute(f"{insert} ON CONFLICT (pool_id, value) DO NOTHING", pool_id, base, now)
    inserted = int(status.split()[-1])  # "INSERT 0 <rows>"
    await conn.execute(
        "UPDATE pools SET last_seq = last_seq + $2, n_available = n_available + $3 WHERE id = $1",
        pool_id,
        len(values),
        inserted,
    )
    if states is not None:
        await carry_states(conn, pool_id, base + 1, states, holders)
    return inserted


async def carry_states(
    conn: asyncpg.Connection,
    pool_id: int,
    first_seq: int,
    rows: Sequence[ExportRow],
    holders: dict[str, int | None],
) -> None:
    """Give the codes just inserted the state, issued_at, uses and holder their rows carry (the code of
    ``rows[i]`` has seq ``first_seq + i``), and move the pool's counters with them."""
    changing = [
        (first_seq + i, row)
        for i, row in enumerate(rows)
        if row.state is not CodeState.AVAILABLE or row.profile is not None
    ]
    if not changing:
        return
    changed = await conn.fetch(
        CARRY_SQL,
        pool_id,
        [seq for seq, _ in changing],
        [row.state.value for _, row in changing],
        [row.issued_at for _, row in changing],
        [row.usage_count for _, row in changing],
        [None if row.profile is None else holders[row.profile] for _, row in changing],
    )
    issued = sum(1 for row in changed if row["state"] == CodeState.ISSUED)
    redeemed = sum(1 for row in changed if row["state"] == CodeState.REDEEMED)
    await conn.execute(
        "UPDATE pools SET n_available = n_available - $2, n_issued = n_issued + $3,"
        " n_redeemed = n_redeemed + $4 WHERE id = $1",
        pool_id,
        issued + redeemed,
        issued,
        redeemed,
    )


class PostgresCodes(PostgresBase):
    async def insert_codes(
        self,
        *,
        pool_id: int,
        values: Sequence[str],
        expect_duplicates: bool = False,
        states: Sequence[ExportRow] | None = None,
    ) -> int:
        async with self._tx() as conn:
            return await insert_values(
                conn, pool_id, values, self.clock(), expect_duplicates=expect_duplicates, states=states
            )

    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        async with self._ordered_read() as conn:
            rows = await conn.fetch(
                f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1"
                " AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR value > $3)"
                " ORDER BY value LIMIT $4",
                pool_id,
                None if state is None else state.value,
                after,
                limit,
            )
        return [code_of(row) for row in rows]

    async def get_code(self, *, pool_id: int, value: str) -> Code | None:
        row = await self._fetchrow(
            f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 AND value = $2", pool_id, value
        )
        return None if row is None else code_of(row)

    async def delete_code(self, *, pool_id: int, value: str) -> bool:
        async with self._tx() as conn:
            state = await conn.fetchval(
                "DELETE FROM codes WHERE pool_id = $1 AND value = $2 RETURNING state", pool_id, value
            )
            if state is None:
                return False
            column = {"available": "n_available", "issued": "n_issued", "redeemed": "n_redeemed"}[state]
            await conn.execute(f"UPDATE pools SET {column} = {column} - 1 WHERE id = $1", pool_id)
        return True
