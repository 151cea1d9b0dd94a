"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

from promopool.storage import Store
from promopool.storage.driver import Execute, Op


def _execute(sql: str) -> Op[int]:
    changed: int = yield Execute(sql)
    return changed


async def execute_sql(store: Store, sql: str) -> int:
    """Run one statement, written so both engines read it, in its own transaction: for setting up a state
    no operation makes (a test's shortcut, never a way around a rule under test). Rows changed."""
    return await store._driver.write(_execute(sql))
