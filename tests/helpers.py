"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from promopool.storage import Store
from promopool.storage.driver import Execute, Op


def _execute(sql: str) -> Op[int]:
    changed: int = yield Execute(sql)
    return changed


async def execute_sql(store: Store, sql: str) -> int:
    """Run one statement, written so both engines read it, in its own transaction: for setting up a state
    no operation makes (a test's shortcut, never a way around a rule under test). Rows changed."""
    return await store._driver.write(_execute(sql))


class FakeClock:
    """A store's clock that moves only when told (no sleeps in tests)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
