"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

from promopool import service
from promopool.domain import Account
from promopool.storage import Store
from promopool.storage.driver import Execute, Fetch, Op


def _execute(sql: str) -> Op[int]:
    changed: int = yield Execute(sql)
    return changed


async def execute_sql(store: Store, sql: str) -> int:
    """Run one statement, written so both engines read it, in its own transaction: for setting up a state
    no operation makes (a test's shortcut, never a way around a rule under test). Rows changed."""
    return await store._driver.write(_execute(sql))


def _state_counts(pool_id: int) -> Op[dict[str, int]]:
    rows = yield Fetch("SELECT state, count(*) AS n FROM codes WHERE pool_id = $1 GROUP BY state", pool_id)
    return {row["state"]: int(row["n"]) for row in rows}


async def state_counts(store: Store, pool_id: int) -> dict[str, int]:
    """How many codes of each state the pool's rows hold, counted row by row (whatever the pool's size)."""
    counted = await store._driver.read(_state_counts(pool_id))
    return {state: counted.get(state, 0) for state in ("available", "issued", "redeemed")}


def _issued_values(pool_id: int) -> Op[list[str]]:
    rows = yield Fetch("SELECT value FROM codes WHERE pool_id = $1 AND state <> 'available'", pool_id)
    return [row["value"] for row in rows]


async def issued_values(store: Store, pool_id: int) -> list[str]:
    """Every code of the pool the database records as handed out (issued or redeemed since)."""
    return await store._driver.read(_issued_values(pool_id))


async def assert_counters_exact(store: Store, account: Account, pool_id: int) -> None:
    """The pool's counters equal its rows' states, counted."""
    counts = (await service.get_pool(store, account=account, pool_id=pool_id)).counts
    kept = {"available": counts.available, "issued": counts.issued, "redeemed": counts.redeemed}
    assert kept == await state_counts(store, pool_id)
