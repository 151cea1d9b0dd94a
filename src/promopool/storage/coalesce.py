"""Group commit for claims.

Concurrent claims on one pool queue up here; one task per pool takes everything queued, claims that many
codes in one transaction and hands them back (what a queued claim carries is the batch runner's business:
an Idempotency-Key or None for plain claims, a recipient for recipient claims). The first claim on an idle
pool starts at once (no added latency); claims arriving while a batch commits form the next batch. Together
with the pool's cursor this turns N commits into one without weakening durability: each caller gets its code
only after the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from promopool.domain import Claimed
from promopool.domain.errors import PromopoolError, StorageUnavailable

T = TypeVar("T")
BatchRunner = Callable[[int, int, Sequence[T]], Awaitable[list[Claimed | PromopoolError]]]

MAX_BATCH = 256


@dataclass(slots=True)
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future[Claimed]


def _consume(future: asyncio.Future[Claimed]) -> None:
    # A caller that went away (client disconnect) no longer awaits its future; read the outcome so asyncio
    # does not log "exception was never retrieved". The code itself stays recorded as issued.
    if not future.cancelled():
        future.exception()


def _fail(pending: Sequence[_Pending[T]], error: Exception) -> None:
    for item in pending:
        if not item.future.done():
            item.future.set_exception(error)


class ClaimCoalescer(Generic[T]):
    def __init__(self, run_batch: BatchRunner[T], *, max_batch: int = MAX_BATCH) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queues: dict[tuple[int, int], list[_Pending[T]]] = {}
        self._drainers: dict[tuple[int, int], asyncio.Task[None]] = {}

    async def claim(self, account_id: int, pool_id: int, item: T) -> Claimed:
        future: asyncio.Future[Claimed] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        slot = (account_id, pool_id)
        self._queues.setdefault(slot, []).append(_Pending(item, future))
        if slot not in self._drainers:
            self._drainers[slot] = asyncio.create_task(self._drain(slot))
        # Shielded: cancelling the caller must not cancel a claim that may already be committing, nor
        # interrupt the database connection mid-statement.
        return await asyncio.shield(future)

    async def _drain(self, slot: tuple[int, int]) -> None:
        try:
            while queue := self._queues.get(slot):
                batch = queue[: self._max_batch]
                del queue[: self._max_batch]
                try:
                    await self._run(slot, batch)
                except BaseException:  # cancelled (shutdown): nobody may be left waiting forever
                    _fail(batch, StorageUnavailable("the server is shutting down"))
                    raise
        finally:
            del self._drainers[slot]
            _fail(self._queues.pop(slot, []), StorageUnavailable("the server is shutting down"))

    async def _run(self, slot: tuple[int, int], batch: list[_Pending[T]]) -> None:
        try:
            results = await self._run_batch(slot[0], slot[1], [p.item for p in batch])
        except Exception as exc:  # a pool-level refusal or a storage failure: every caller gets it
            for pending in batch:
                pending.future.set_exception(exc)
            return
        for pending, result in zip(batch, results, strict=True):
            if isinstance(result, PromopoolError):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)
