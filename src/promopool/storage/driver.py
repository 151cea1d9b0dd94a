"""What an engine must do for the shared storage operations: the driver contract and the steps it runs.

Every operation is written once, in ``storage/ops/``, as a plain generator (sans-I/O, as h11 is for HTTP):
it yields steps (``FetchRow(sql, *args)`` …), receives each step's result, and returns the operation's
value. A driver runs it: the SQLite driver synchronously inside its writer or a reader thread, the asyncpg
driver awaiting each step. SQL is written once, in PostgreSQL's dialect with ``$N`` parameters; the SQLite
driver rewrites what SQLite spells differently (``sqlite_sql`` in ``sqlite/driver.py``). Where a statement
cannot be shared, it is an ``SQL(postgres=…, sqlite=…)`` pair, side by side where it is used.

Rows come back addressable by column name (asyncpg.Record, sqlite3.Row); ``storage/rows.py`` turns them into
domain objects, tolerating each engine's types (timestamps as ``datetime`` or ISO text, booleans as 0/1).
"""

from __future__ import annotations

import abc
import time
from collections.abc import Awaitable, Callable, Collection, Generator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from promopool import metrics
from promopool.domain import Code

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SQL:
    """A statement the engines spell differently, both spellings side by side."""

    postgres: str
    sqlite: str


Statement = str | SQL


class Step:
    """One thing an operation asks of the driver; the driver sends back its result."""

    __slots__ = ()


class _Query(Step):
    __slots__ = ("args", "sql")

    def __init__(self, sql: Statement, *args: Any) -> None:
        self.sql = sql
        self.args = args


class Fetch(_Query):
    """Every row: a list of rows."""

    __slots__ = ()


class FetchRow(_Query):
    """The first row, or None."""

    __slots__ = ()


class FetchVal(_Query):
    """The first column of the first row, or None."""

    __slots__ = ()


class Execute(_Query):
    """Run for its effect: the number of rows changed."""

    __slots__ = ()


@dataclass(slots=True)
class TakeCodes(Step):
    """The claim algorithm (docs/design.md): issue up to ``wanted`` codes of a pool whose row this transaction
    holds, read forward from ``cursor``; counters, activity and a low-stock event with them. The taken codes,
    in queue order. PostgreSQL: the ``take_codes`` function; SQLite: the same loop in Python."""

    pool_id: int
    cursor: int
    wanted: int
    now: datetime


@dataclass(slots=True)
class StageCodes(Step):
    """Hand an import's values to the database before the pool is locked (PostgreSQL: a binary COPY into a
    session-private table); SQLite keeps them in memory."""

    values: Sequence[str]


@dataclass(slots=True)
class InsertCodes(Step):
    """Insert the staged values at ``fresh`` (indexes into the staged values, in order) as available codes
    numbered ``first_seq + index``, skipping values the pool holds: how many were inserted. The bulk insert:
    PostgreSQL ``INSERT … SELECT`` from the staged table, SQLite ``executemany``."""

    pool_id: int
    first_seq: int
    values: Sequence[str]
    fresh: Sequence[int] | None  # None: every staged value
    now: datetime
    expect_duplicates: bool


@dataclass(slots=True)
class Script(Step):
    """A migration's SQL as written for its engine: never rewritten, and split into statements where the
    engine runs one at a time."""

    sql: str


Op = Generator[Step, Any, T]

# Runs read-only operations one after another in one snapshot (``Driver.snapshot``).
SnapshotReader = Callable[[Op[T]], Awaitable[T]]


class UniqueViolation(Exception):
    """Thrown into an operation when its statement broke a unique constraint. On PostgreSQL the transaction
    is then aborted: an operation may only turn it into a domain error, not go on."""


# How an engine performs each kind of step on its connection: ``perform[type(step)](conn, step)``, its
# result sent back into the operation (an awaitable of it, for an async driver). Made by ``performers``.
Performers = Mapping[type[Step], Callable[[Any, Any], Any]]
IsUnique = Callable[[Exception], bool]  # whether the engine's error is a broken unique constraint


def performers(
    *,
    fetch: Callable[[Any, Fetch], Any],
    fetch_row: Callable[[Any, FetchRow], Any],
    fetch_val: Callable[[Any, FetchVal], Any],
    execute: Callable[[Any, Execute], Any],
    take_codes: Callable[[Any, TakeCodes], Any],
    stage_codes: Callable[[Any, StageCodes], Any],
    insert_codes: Callable[[Any, InsertCodes], Any],
    script: Callable[[Any, Script], Any],
) -> Performers:
    """An engine's way to perform each kind of step, named: a kind of step added here is one that every
    engine is then told (by mypy, and at import) to perform."""
    return {
        Fetch: fetch,
        FetchRow: fetch_row,
        FetchVal: fetch_val,
        Execute: execute,
        TakeCodes: take_codes,
        StageCodes: stage_codes,
        InsertCodes: insert_codes,
        Script: script,
    }


class _Steps:
    """An operation being run: each step's result (or the unique violation it raised) goes back in, until the
    operation returns its ``value``. The part of running it that is the same for every driver; ``run_steps``
    and ``run_steps_async`` are its loop, without and with awaiting each step."""

    __slots__ = ("_op", "_unique", "value")

    def __init__(self, op: Op[Any], unique: IsUnique) -> None:
        self._op = op
        self._unique = unique
        self.value: Any = None

    def send(self, result: Any) -> Step | None:
        """The next step, given the last one's result (None to start); None once the operation returned."""
        try:
            return self._op.send(result)
        except StopIteration as stop:
            self.value = stop.value
            return None

    def fail(self, error: Exception) -> Step | None:
        """The next step after the last one raised ``error``: a broken unique constraint is thrown into the
        operation as a UniqueViolation; any other error, or one the operation lets through, is raised."""
        if not self._unique(error):
            raise error
        violation = UniqueViolation(str(error))
        try:
            return self._op.throw(violation)
        except StopIteration as stop:
            self.value = stop.value
            return None
        except UniqueViolation as exc:
            if exc is violation:
                raise error from None  # not the operation's to handle: the engine's own error
            raise


def run_steps(conn: Any, op: Op[T], perform: Performers, unique: IsUnique) -> T:
    """Run ``op`` to its end on ``conn``, in the caller's thread and transaction."""
    steps = _Steps(op, unique)
    step = steps.send(None)
    while step is not None:
        try:
            result = perform[type(step)](conn, step)
        except Exception as exc:
            step = steps.fail(exc)
        else:
            step = steps.send(result)
    return steps.value  # type: ignore[no-any-return]


async def run_steps_async(conn: Any, op: Op[T], perform: Performers, unique: IsUnique) -> T:
    """``run_steps`` for an engine whose performers return awaitables."""
    steps = _Steps(op, unique)
    step = steps.send(None)
    while step is not None:
        try:
            result = await perform[type(step)](conn, step)
        except Exception as exc:
            step = steps.fail(exc)
        else:
            step = steps.send(result)
    return steps.value  # type: ignore[no-any-return]


async def _measured(operation: str, work: Awaitable[T]) -> T:
    started = time.perf_counter()
    try:
        return await work
    except BaseException as exc:
        metrics.count_database_error(exc)
        raise
    finally:
        metrics.observe_database(operation, time.perf_counter() - started)


# Seconds a statement waits for a lock (a pool's row; SQLite's write lock) before StorageBusy: a claim must
# not hang behind a transaction that holds its pool (settings: lock_timeout_seconds).
DEFAULT_LOCK_TIMEOUT = 5.0


class Driver(abc.ABC):
    """An engine: connections and transactions, running operations, and the claim's fast path."""

    engine: str

    def __init__(self, url: str, *, pool_size: int, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        self.url = url
        self.pool_size = pool_size
        self.lock_timeout = lock_timeout

    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self, now: datetime) -> list[int]:
        """Apply the engine's pending migrations; the versions applied now."""

    # The public write, read and claim time each operation and count its failures (promopool_database_*),
    # in this one place for every engine; an engine implements the underscored methods.
    async def write(self, op: Op[T]) -> T:
        """Run ``op`` as one transaction, durable before this returns."""
        return await _measured("write", self._write(op))

    async def read(self, op: Op[T], *, paged: bool = False) -> T:
        """Run a read-only ``op``; ``paged``: in one snapshot, its ``ORDER BY … LIMIT`` pages walking their
        index."""
        return await _measured("read", self._read(op, paged=paged))

    async def claim(self, account_id: int, pool_id: int, wanted: int, now: datetime) -> list[Code]:
        """A claim batch without idempotency keys, its own transaction: the hot path, one round trip on
        PostgreSQL (the ``claim_codes`` function). PoolNotFound, PoolExpired."""
        return await _measured("claim", self._claim(account_id, pool_id, wanted, now))

    @abc.abstractmethod
    async def _write(self, op: Op[T]) -> T: ...

    @abc.abstractmethod
    async def _read(self, op: Op[T], *, paged: bool) -> T: ...

    @abc.abstractmethod
    async def _claim(self, account_id: int, pool_id: int, wanted: int, now: datetime) -> list[Code]:
        """A claim batch without keys, its own transaction: ``self._write(take_fresh(…))``
        (``storage/ops/claims.py``), or the engine's faster way. (The operations import this module, so
        the engine's module names the operation, not this one.)"""

    @abc.abstractmethod
    def snapshot(self) -> AbstractAsyncContextManager[SnapshotReader[Any]]:
        """A read-only transaction held open: every operation run through it, however many and whatever
        the caller does in between, sees the database as it was when it began (copying a whole database
        page by page)."""

    def backup(
        self, path: str, on_pages: Callable[[int, int], None] | None
    ) -> AbstractAsyncContextManager[SnapshotReader[Any]]:
        """SQLite only: copy the database into a new file at ``path`` with the engine's online backup API
        (``on_pages(copied, total)`` after each step), fsynced, and then be a ``snapshot`` of exactly what the
        file holds. Other engines have no such file copy; their backup is a table copy."""
        raise NotImplementedError(f"{self.engine} has no file backup")

    # A job's owner is the process running it (storage/ops/jobs.py); how that process is named, and how its
    # end is told, is the engines' one difference there.
    @abc.abstractmethod
    async def job_owner(self) -> str:
        """This process as the owner of the jobs it runs: the token ``jobs.owner`` records."""

    @abc.abstractmethod
    async def gone_owners(self, owners: Collection[str]) -> set[str]:
        """Those of ``owners`` (``job_owner`` tokens) whose process has ended: told at once and exactly,
        never a live process, on this machine or another."""
