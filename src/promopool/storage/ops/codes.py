"""Codes of a pool: import, listing, lookup by exact value, deletion, bulk removal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from promopool.domain import Code, CodeState, ImportReport
from promopool.domain.errors import CodeNotFound, PoolNotFound
from promopool.domain.export import ExportRow, ImportRow, holder_keys
from promopool.domain.idempotency import Keyed, Once
from promopool.domain.normalization import lookup_key, new_values
from promopool.storage.core import StoreCore
from promopool.storage.driver import SQL, Execute, Fetch, FetchRow, FetchVal, InsertCodes, Op, StageCodes
from promopool.storage.ops import idempotency
from promopool.storage.ops.alerts import record_imports
from promopool.storage.ops.holders import profile_id
from promopool.storage.ops.pools import lock_pool, locked_pool, once_in_pool
from promopool.storage.rows import CODE_COLUMNS, code_of, normalization_of


def stored_alike(pool_id: int, values: Sequence[str]) -> Op[list[str]]:
    """The pool's codes sharing a lookup key with any of ``values``."""
    rows = yield Fetch(
        "SELECT value FROM codes WHERE pool_id = $1 AND lookup_key = ANY($2::text[])",
        pool_id,
        sorted({lookup_key(value) for value in values}),
    )
    return [row["value"] for row in rows]


def insert_codes(
    pool_id: int,
    values: Sequence[str],
    now: datetime,
    expect_duplicates: bool = False,
    states: Sequence[ExportRow] | None = None,
) -> Op[int]:
    """Insert ``values`` into the pool as available codes numbered in their order, skipping any the pool
    already holds (or equals under its normalization), then give them the ``states`` their rows carry, if
    given; how many were inserted."""
    yield StageCodes(values)  # before the pool's row is taken: it is held only while the codes go in
    holders: dict[str, int | None] = {}
    if states is not None:
        # Found or created before the pool's row is taken, as a redeem does (no one holding a pool's row
        # waits for a profile).
        account_id = yield FetchVal("SELECT account_id FROM pools WHERE id = $1", pool_id)
        if account_id is None:
            raise PoolNotFound(pool_id)
        for key in holder_keys(states):
            holders[key] = yield from profile_id(account_id, key, create_at=now)
    pool = yield from locked_pool(pool_id, None, "last_seq, case_insensitive, ignore_separators")
    if pool is None:
        raise PoolNotFound(pool_id)
    normalization = normalization_of(pool)
    fresh = None
    if normalization.folds:  # a value equal to a stored code under the pool's settings is a duplicate
        stored = yield from stored_alike(pool_id, values)
        fresh = [index for index, _ in new_values(values, stored, normalization)]
    inserted: int = yield InsertCodes(pool_id, pool["last_seq"] + 1, values, fresh, now, expect_duplicates)
    # Skipped values keep their seq numbers unused, which costs a claim nothing (it seeks along the index).
    # New codes end the pool's fallback: the next time it runs dry starts it (and its event) again.
    refilled = ", fallback_since = NULL" if inserted else ""
    yield Execute(
        f"UPDATE pools SET last_seq = last_seq + $2, n_available = n_available + $3{refilled} WHERE id = $1",
        pool_id,
        len(values),
        inserted,
    )
    if inserted:
        yield from record_imports(pool_id, inserted, now)
    if states is not None:
        yield from carry_states(pool_id, pool["last_seq"] + 1, states, holders)
        yield from carry_descriptions(pool_id, pool["last_seq"] + 1, states)
    return inserted


CARRY_STATES = SQL(
    postgres="UPDATE codes c SET state = v.state, issued_at = v.issued_at, usage_count = v.usage_count,"
    " profile_id = v.profile_id"
    " FROM unnest($2::bigint[], $3::text[], $4::timestamptz[], $5::integer[], $6::bigint[])"
    " AS v (seq, state, issued_at, usage_count, profile_id)"
    " WHERE c.pool_id = $1 AND c.seq = v.seq RETURNING c.state",
    # The arrays are materialized so that SQLite joins them through automatic indexes: json_each joined to
    # json_each by key is a scan per row (measured: 3,000 rows 4.0 s, against 0.1 s so; 10,000 rows 0.3 s).
    sqlite="WITH s AS MATERIALIZED (SELECT key, value FROM json_each($2)),"
    " t AS MATERIALIZED (SELECT key, value FROM json_each($3)),"
    " i AS MATERIALIZED (SELECT key, value FROM json_each($4)),"
    " u AS MATERIALIZED (SELECT key, value FROM json_each($5)),"
    " p AS MATERIALIZED (SELECT key, value FROM json_each($6))"
    " UPDATE codes SET state = v.state, issued_at = v.issued_at, usage_count = v.usage_count,"
    " profile_id = v.profile_id"
    " FROM (SELECT s.value AS seq, t.value AS state, i.value AS issued_at, u.value AS usage_count,"
    " p.value AS profile_id FROM s JOIN t ON t.key = s.key JOIN i ON i.key = s.key"
    " JOIN u ON u.key = s.key JOIN p ON p.key = s.key) v"
    " WHERE codes.pool_id = $1 AND codes.seq = v.seq RETURNING codes.state",
)


CARRY_DESCRIPTIONS = SQL(
    postgres="UPDATE codes c SET description = v.description"
    " FROM unnest($2::bigint[], $3::text[]) AS v (seq, description) WHERE c.pool_id = $1 AND c.seq = v.seq",
    # materialized as in CARRY_STATES, for the same reason
    sqlite="WITH s AS MATERIALIZED (SELECT key, value FROM json_each($2)),"
    " d AS MATERIALIZED (SELECT key, value FROM json_each($3))"
    " UPDATE codes SET description = v.description"
    " FROM (SELECT s.value AS seq, d.value AS description FROM s JOIN d ON d.key = s.key) v"
    " WHERE codes.pool_id = $1 AND codes.seq = v.seq",
)


def carry_descriptions(pool_id: int, first_seq: int, rows: Sequence[ExportRow]) -> Op[None]:
    """Give the codes just inserted the descriptions their rows carry (numbered as in ``carry_states``)."""
    described = [
        (first_seq + i, row.description)
        for i, row in enumerate(rows)
        if isinstance(row, ImportRow) and row.description
    ]
    if described:
        yield Execute(
            CARRY_DESCRIPTIONS, pool_id, [seq for seq, _ in described], [text for _, text in described]
        )


def carry_states(
    pool_id: int, first_seq: int, rows: Sequence[ExportRow], holders: dict[str, int | None]
) -> Op[None]:
    """Give the codes just inserted the state, issued_at, uses and holder their rows carry (the code of
    ``rows[i]`` has seq ``first_seq + i``; a row skipped as a duplicate has no code there and changes
    nothing), and move the pool's counters with them."""
    changing = [
        (first_seq + i, row)
        for i, row in enumerate(rows)
        if row.state is not CodeState.AVAILABLE or row.profile is not None
    ]
    if not changing:
        return
    changed = yield Fetch(
        CARRY_STATES,
        pool_id,
        [seq for seq, _ in changing],
        [row.state.value for _, row in changing],
        [row.issued_at for _, row in changing],
        [row.usage_count for _, row in changing],
        [None if row.profile is None else holders[row.profile] for _, row in changing],
    )
    moved = Counter(row["state"] for row in changed)
    yield Execute(
        "UPDATE pools SET n_available = n_available - $2 - $3, n_issued = n_issued + $2,"
        " n_redeemed = n_redeemed + $3 WHERE id = $1",
        pool_id,
        moved["issued"],
        moved["redeemed"],
    )


def list_codes(pool_id: int, state: CodeState | None, after: str | None, limit: int) -> Op[list[Code]]:
    # Only the conditions given: an `(x IS NULL OR …)` would keep SQLite from seeking to the cursor.
    args: list[Any] = [pool_id]
    where = "pool_id = $1"
    if state is not None:
        args.append(state.value)
        where += f" AND state = ${len(args)}"
    if after is not None:
        args.append(after)
        where += f" AND value > ${len(args)}"
    args.append(limit)
    rows = yield Fetch(
        f"SELECT {CODE_COLUMNS} FROM codes WHERE {where} ORDER BY value LIMIT ${len(args)}", *args
    )
    return [code_of(row) for row in rows]


def code_where(condition: str, *args: Any) -> Op[Code | None]:
    """The code meeting ``condition`` (read from ``codes``), or None."""
    row = yield FetchRow(f"SELECT {CODE_COLUMNS} FROM codes WHERE {condition}", *args)
    return None if row is None else code_of(row)


def code_by_id(code_id: int) -> Op[Code]:
    """The code a row read in this transaction points at (its foreign key keeps the code there)."""
    return code_of((yield FetchRow(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = $1", code_id)))


def codes_by_id(ids: Sequence[int]) -> Op[list[Code]]:
    """The codes of ``ids`` still there, in the order of ``ids`` (a code may have been deleted since the ids
    were recorded: ``code_by_id`` is for ids a foreign key guards)."""
    rows = yield Fetch(f"SELECT {CODE_COLUMNS} FROM codes WHERE id = ANY($1::bigint[])", list(ids))
    found = {code.id: code for code in map(code_of, rows)}
    return [found[id_] for id_ in ids if id_ in found]


def get_code(pool_id: int, value: str) -> Op[Code | None]:
    return (yield from code_where("pool_id = $1 AND value = $2", pool_id, value))


def set_description(account_id: int, pool_id: int, value: str, description: str) -> Op[Code | None]:
    """The code with its new description, or None when the account's pool holds no such code. (No state
    changes, so no pool row to take first.)"""
    row = yield FetchRow(
        f"UPDATE codes SET description = $4 WHERE pool_id = $1 AND value = $2"
        f" AND pool_id IN (SELECT id FROM pools WHERE account_id = $3) RETURNING {CODE_COLUMNS}",
        pool_id,
        value,
        account_id,
        description,
    )
    return None if row is None else code_of(row)


def describe_code(account_id: int, pool_id: int, value: str, description: str) -> Op[Code]:
    """``set_description``; CodeNotFound when there is no such code (raised: a keyed change keeps no key)."""
    code = yield from set_description(account_id, pool_id, value, description)
    if code is None:
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    return code


def delete_codes(pool_id: int, values: Sequence[str], account_id: int | None = None) -> Op[int | None]:
    """Delete the pool's codes with these exact values, counters adjusted; how many, or None for no such
    pool (of the account, when given)."""
    if not (yield from lock_pool(pool_id, account_id)):
        return None
    rows = yield Fetch(
        "DELETE FROM codes WHERE pool_id = $1 AND value = ANY($2::text[]) RETURNING state",
        pool_id,
        list(values),
    )
    by_state = Counter(row["state"] for row in rows)
    yield Execute(
        "UPDATE pools SET n_available = n_available - $2, n_issued = n_issued - $3,"
        " n_redeemed = n_redeemed - $4 WHERE id = $1",
        pool_id,
        by_state["available"],
        by_state["issued"],
        by_state["redeemed"],
    )
    return len(rows)


def delete_code(pool_id: int, value: str) -> Op[bool]:
    """Delete one code; CodeNotFound when the pool has none such (raised: a keyed delete keeps no key)."""
    if not (yield from delete_codes(pool_id, [value])):
        raise CodeNotFound(f"code {value!r} not found in pool {pool_id}", pool_id=pool_id)
    return True


def insert_first_codes(
    account_id: int,
    pool_id: int,
    values: Sequence[str],
    now: datetime,
    request: Keyed,
    states: Sequence[ExportRow] | None = None,
) -> Op[int | ImportReport]:
    """A keyed import's first batch: the key reserved with it (under the pool's row), then ``insert_codes``;
    how many were inserted, or the first answer when the import was done before (nothing inserted). A key
    reserved by an import that never finished (a crash, a broken upload) is taken over: the retry imports
    again, the codes stored before count as duplicates."""
    if not (yield from lock_pool(pool_id, account_id)):
        raise PoolNotFound(pool_id)
    scope = idempotency.import_scope(pool_id)
    earlier = yield from idempotency.reserve_request(account_id, request, scope, now)
    if earlier is not None and earlier.answer is not None:  # else an import that never finished: resumed
        replayed: ImportReport = idempotency.decode(earlier.answer, ImportReport)
        return replayed
    return (yield from insert_codes(pool_id, values, now, False, states))


def purge_available(account_id: int, pool_id: int) -> Op[int | None]:
    """Delete the pool's available codes (those not handed out); how many, or None for no such pool."""
    if not (yield from lock_pool(pool_id, account_id)):
        return None
    deleted = yield Execute("DELETE FROM codes WHERE pool_id = $1 AND state = 'available'", pool_id)
    yield Execute("UPDATE pools SET n_available = n_available - $2 WHERE id = $1", pool_id, deleted)
    return int(deleted)


class Codes(StoreCore):
    async def insert_codes(
        self,
        *,
        pool_id: int,
        values: Sequence[str],
        expect_duplicates: bool = False,
        states: Sequence[ExportRow] | None = None,
    ) -> int:
        """Insert valid, stripped values into the pool as available codes, skipping any value the pool
        already holds (or that repeats within ``values``); return how many were inserted.
        ``expect_duplicates`` is a hint (earlier batches of the upload held some): an engine may then skip
        a way that is faster only without duplicates. The outcome is the same either way.
        ``states`` (checked rows, one per value, in order) gives each inserted code its row's state,
        ``issued_at``, ``usage_count`` and holder (the profile of that key in the account's default profile
        database, found or created as a redeem naming it would), in the same transaction: a code imported
        issued or redeemed is never available, not even for a moment."""
        op = insert_codes(pool_id, values, self.clock(), expect_duplicates, states)
        return await self._driver.write(op)

    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        """Codes of the pool ordered by value, those after ``after`` (a cursor) only."""
        return await self._driver.read(list_codes(pool_id, state, after, limit), paged=True)

    async def get_code(self, *, pool_id: int, value: str) -> Code | None:
        return await self._driver.read(get_code(pool_id, value))

    async def set_description(
        self, *, account_id: int, pool_id: int, value: str, description: str, request: Keyed | None = None
    ) -> Once[Code]:
        """Set the code's description, once per keyed request (the same request again gets the code as the
        first answer gave it); CodeNotFound when the account's pool holds no such code, PoolNotFound."""
        scope = idempotency.describe_code_scope(pool_id)
        write = describe_code(account_id, pool_id, value, description)
        return await self._driver.write(
            once_in_pool(account_id, pool_id, request, scope, self.clock(), write, Code)
        )

    async def delete_code(self, *, pool_id: int, value: str) -> bool:
        return bool(await self._driver.write(delete_codes(pool_id, [value])))

    async def delete_code_once(
        self, *, account_id: int, pool_id: int, value: str, request: Keyed | None
    ) -> Once[bool]:
        """Delete one code of the account's pool, once per keyed request; CodeNotFound, PoolNotFound."""
        scope = idempotency.delete_code_scope(pool_id)
        write = delete_code(pool_id, value)
        return await self._driver.write(
            once_in_pool(account_id, pool_id, request, scope, self.clock(), write, bool)
        )

    async def insert_first_codes(
        self,
        *,
        account_id: int,
        pool_id: int,
        values: Sequence[str],
        request: Keyed,
        states: Sequence[ExportRow] | None = None,
    ) -> int | ImportReport:
        """``insert_codes`` as the first batch of a keyed import: the key reserved in its transaction; the
        first answer instead (nothing inserted) when that import was answered before. IdempotencyKeyReused
        when the key was used for another request."""
        op = insert_first_codes(account_id, pool_id, values, self.clock(), request, states)
        return await self._driver.write(op)

    async def finish_import(
        self, *, account_id: int, pool_id: int, request: Keyed, report: ImportReport
    ) -> Once[ImportReport]:
        """Keep ``report`` as the keyed import's answer (reserving the key if no batch did), unless a twin
        kept one first: then that one, replayed."""
        op = idempotency.finish(
            account_id, request, idempotency.import_scope(pool_id), self.clock(), report, ImportReport
        )
        return await self._driver.write(op)

    async def delete_codes(self, *, account_id: int, pool_id: int, values: Sequence[str]) -> int | None:
        """Delete the pool's codes with these exact (distinct, valid) values, counters adjusted; how many were
        deleted, or None for no such pool."""
        return await self._driver.write(delete_codes(pool_id, values, account_id))

    async def purge_available(self, *, account_id: int, pool_id: int) -> int | None:
        """Delete the pool's available codes (those not handed out); how many, or None for no such pool."""
        return await self._driver.write(purge_available(account_id, pool_id))
