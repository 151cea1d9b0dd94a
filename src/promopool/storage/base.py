"""The storage interface every engine implements, and what they share.

Engines are chosen by URL scheme (``open_store``) and import their driver only in their own module. Business
rules live in ``promopool.service``; a store only keeps data consistent and atomic.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from promopool.domain import (
    Account,
    Claimed,
    Code,
    CodeState,
    Pool,
    PoolSettings,
)
from promopool.domain.errors import Conflict, IdempotencyKeyReused, PoolExhausted, PromopoolError
from promopool.domain.export import ExportRow
from promopool.domain.jobs import Job, JobKind
from promopool.storage.coalesce import ClaimCoalescer

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(engine: str) -> list[Migration]:
    """The engine's versioned SQL files, ``NNNN_name.sql``, in order."""
    folder = resources.files("promopool.storage.migrations").joinpath(engine)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


ClaimResult = Claimed | PromopoolError


class Store(abc.ABC):
    """One database holding every account's data; every method is scoped by the caller's account."""

    engine: str

    def __init__(self, url: str, *, clock: Clock = utc_now, pool_size: int = 10) -> None:
        self.url = url
        self.clock = clock
        self.pool_size = pool_size  # database connections this store may hold open
        self._claims = ClaimCoalescer(self.claim_batch)

    # -- lifecycle ---------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StorageUnavailable unless the database answers."""

    # -- accounts ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_account(self, *, name: str, public_key: str, key_hash: str) -> Account: ...

    @abc.abstractmethod
    async def add_api_key(self, *, account_id: int, key_hash: str) -> None: ...

    @abc.abstractmethod
    async def account_by_key_hash(self, key_hash: str) -> Account | None: ...

    @abc.abstractmethod
    async def account_by_public_key(self, public_key: str) -> Account | None: ...

    @abc.abstractmethod
    async def account_by_name(self, name: str) -> Account | None: ...

    @abc.abstractmethod
    async def count_accounts(self) -> int: ...

    # -- pools -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_pool(self, *, account_id: int, name: str, settings: PoolSettings) -> Pool: ...

    @abc.abstractmethod
    async def list_pools(self, *, account_id: int) -> list[Pool]: ...

    @abc.abstractmethod
    async def get_pool(self, *, account_id: int, pool_id: int) -> Pool | None: ...

    @abc.abstractmethod
    async def update_pool(
        self, *, account_id: int, pool_id: int, name: str, settings: PoolSettings
    ) -> Pool | None: ...

    @abc.abstractmethod
    async def delete_pool(self, *, account_id: int, pool_id: int) -> bool: ...

    # -- codes -------------------------------------------------------------------------------------------
    @abc.abstractmethod
    async def insert_codes(self, *, pool_id: int, values: Sequence[str]) -> int:
        """Insert valid, stripped values into the pool as available codes, skipping any value the pool
        already holds (or that repeats within ``values``); return how many were inserted."""

    @abc.abstractmethod
    async def list_codes(
        self, *, pool_id: int, state: CodeState | None, after: str | None, limit: int
    ) -> list[Code]:
        """Codes of the pool ordered by value, those after ``after`` (a cursor) only."""

    @abc.abstractmethod
    async def get_code(self, *, pool_id: int, value: str) -> Code | None: ...

    @abc.abstractmethod
    async def delete_code(self, *, pool_id: int, value: str) -> bool: ...

    # -- claims ------------------------------------------------------------------------------------------
    async def claim(self, *, account_id: int, pool_id: int, idempotency_key: str | None) -> Claimed:
        """Hand out the pool's next available code exactly once (coalesced with concurrent claims)."""
        return await self._claims.claim(account_id, pool_id, idempotency_key)

    @abc.abstractmethod
    async def claim_batch(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[ClaimResult]:
        """Claim one code for each entry of ``keys`` in one transaction.

        An entry with an idempotency key whose earlier claim (same pool) exists gets that claim back,
        ``replayed``; same key on another scope gets IdempotencyKeyReused; when the pool runs dry the
        remaining entries get PoolExhausted. Raises PoolNotFound or PoolExpired for the whole batch.
        Durable (committed) before it returns.
        """

    @abc.abstractmethod
    async def purge_idempotency_keys(self, *, older_than: datetime) -> int: ...

    # -- generation jobs and export -----------------------------------------------------------------------
    @abc.abstractmethod
    async def create_job(
        self, *, account_id: int, kind: JobKind, pool_id: int, total: int, params: dict[str, Any]
    ) -> Job:
        """Record a new running job. Conflict when the pool already has a running job."""

    @abc.abstractmethod
    async def get_job(self, *, account_id: int, job_id: int) -> Job | None: ...

    @abc.abstractmethod
    async def insert_job_codes(self, *, job_id: int, pool_id: int, values: Sequence[str]) -> int:
        """``insert_codes`` for a running job: in the same transaction, add the number inserted to the job's
        ``done`` and move its heartbeat (``updated_at``). When the job is no longer running, stores nothing
        and raises Conflict."""

    @abc.abstractmethod
    async def finish_job(self, *, job_id: int, error: str | None) -> Job | None:
        """End a running job: ``succeeded``, or ``failed`` with ``error``. None when it was not running."""

    @abc.abstractmethod
    async def fail_stale_jobs(self, *, silent_since: datetime, error: str) -> int:
        """Mark ``failed`` every running job whose heartbeat is older than ``silent_since``; return how
        many."""

    @abc.abstractmethod
    def export_codes(
        self, *, pool_id: int, state: CodeState | None, batch_size: int
    ) -> AsyncIterator[list[ExportRow]]:
        """The pool's codes (of one state, or all) in value order, a batch at a time, read page by page
        (keyset on the value) so memory stays constant however large the pool."""


def claim_scope(pool_id: int) -> str:
    return f"claim:{pool_id}"


def key_reused(key: str) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(f"Idempotency-Key {key!r} was already used for another request", key=key)


class ClaimPlan:
    """Who in a claim batch gets a fresh code, who gets a replay, and what each finally receives.

    Shared by the engines so that the idempotency rules are written once: the first entry with a key decides
    for every later entry with the same key in the batch.
    """

    def __init__(self, keys: Sequence[str | None]) -> None:
        self._keys = list(keys)
        self._first: dict[str, int] = {}
        for index, key in enumerate(self._keys):
            if key is not None:
                self._first.setdefault(key, index)
        self._results: dict[int, ClaimResult] = {}

    def keyed(self) -> list[str]:
        return list(self._first)

    def replay(self, key: str, result: ClaimResult) -> None:
        self._results[self._first[key]] = result

    def decided(self, key: str) -> bool:
        return self._first[key] in self._results

    def unserved_keys(self) -> list[str]:
        """Keys that got no code (pool exhausted): their records must not outlive this batch."""
        return [
            key for key, index in self._first.items() if isinstance(self._results.get(index), PoolExhausted)
        ]

    def _fresh(self) -> list[int]:
        return [
            index
            for index, key in enumerate(self._keys)
            if index not in self._results and (key is None or self._first[key] == index)
        ]

    def needed(self) -> int:
        return len(self._fresh())

    def assign(self, codes: Sequence[Code], pool_id: int) -> list[tuple[str, Code]]:
        """Give out ``codes`` in order; return the (key, code) pairs to record as idempotency keys."""
        fresh = self._fresh()
        recorded = []
        for index, code in zip(fresh, codes, strict=False):
            self._results[index] = Claimed(code)
            key = self._keys[index]
            if key is not None:
                recorded.append((key, code))
        for index in fresh[len(codes) :]:
            self._results[index] = PoolExhausted(pool_id)
        return recorded

    def results(self) -> list[ClaimResult]:
        out: list[ClaimResult] = []
        for index, key in enumerate(self._keys):
            if key is not None and self._first[key] != index:
                first = self._results[self._first[key]]
                out.append(Claimed(first.code, replayed=True) if isinstance(first, Claimed) else first)
            else:
                out.append(self._results[index])
        return out


def job_running(pool_id: int) -> Conflict:
    return Conflict(f"a job is already running on pool {pool_id}", pool_id=pool_id)


def job_stopped(job_id: int) -> Conflict:
    return Conflict(f"job {job_id} is no longer running", job_id=job_id)
