"""Transitional: what the sqlite engine's remaining mixins (the areas not yet in ``storage/ops/``) use: the
driver's writer and readers as ``_write(fn)`` / ``_read(fn)``, and positional row conversions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from promopool.domain import Account, Code, CodeState, Pool, PoolCounts, PoolSettings
from promopool.storage.core import Clock, utc_now
from promopool.storage.driver import DEFAULT_LOCK_TIMEOUT
from promopool.storage.rows import CODE_COLUMNS, POOL_COLUMNS
from promopool.storage.sqlite.driver import SQLiteDriver, ts
from promopool.storage.store import Store

T = TypeVar("T")

__all__ = ["CODE_COLUMNS", "POOL_COLUMNS", "SQLiteBase", "ts"]


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def account_of(row: sqlite3.Row) -> Account:
    return Account(id=row[0], name=row[1], public_key=row[2], created_at=datetime.fromisoformat(row[3]))


def pool_of(row: sqlite3.Row) -> Pool:
    return Pool(
        id=row[0],
        account_id=row[1],
        name=row[2],
        settings=PoolSettings(
            max_uses=row[3],
            per_profile_limit=row[4],
            expires_at=_dt(row[5]),
            public_fetch=bool(row[6]),
            case_insensitive=bool(row[11]),
            ignore_separators=bool(row[12]),
            holder_only=bool(row[13]),
        ),
        counts=PoolCounts(available=row[7], issued=row[8], redeemed=row[9]),
        created_at=datetime.fromisoformat(row[10]),
    )


def code_of(row: sqlite3.Row) -> Code:
    return Code(
        id=row[0],
        pool_id=row[1],
        value=row[2],
        state=CodeState(row[3]),
        description=row[4],
        usage_count=row[5],
        expires_at=_dt(row[6]),
        issued_at=_dt(row[7]),
        profile_id=row[8],
        created_at=_dt(row[9]),
    )


class SQLiteBase(Store):
    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utc_now,
        pool_size: int = 10,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self._db = SQLiteDriver(url, pool_size=pool_size, lock_timeout=lock_timeout)
        super().__init__(self._db, clock=clock)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._db.submit(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._db.read_with(fn)
