"""Group commit: batching, per-caller outcomes, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from promopool.domain import Claimed, Code, CodeState
from promopool.domain.errors import PoolExhausted, PromopoolError, StorageUnavailable
from promopool.storage.coalesce import ClaimCoalescer


def code(n: int) -> Code:
    return Code(id=n, pool_id=1, value=f"C{n}", state=CodeState.ISSUED, created_at=datetime.now(UTC))


class FakeBatches:
    """Hands out codes in order; records the batch sizes; optionally blocks until released."""

    def __init__(self, stock: int) -> None:
        self.stock = stock
        self.next = 0
        self.batches: list[int] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(
        self, account_id: int, pool_id: int, keys: Sequence[str | None]
    ) -> list[Claimed | PromopoolError]:
        await self.gate.wait()
        self.batches.append(len(keys))
        out: list[Claimed | PromopoolError] = []
        for _ in keys:
            if self.next < self.stock:
                self.next += 1
                out.append(Claimed(code(self.next)))
            else:
                out.append(PoolExhausted(pool_id))
        return out


async def test_concurrent_claims_share_batches_and_each_gets_its_own_outcome() -> None:
    fake = FakeBatches(stock=50)
    coalescer = ClaimCoalescer(fake)
    results = await asyncio.gather(*[coalescer.claim(1, 1, None) for _ in range(60)], return_exceptions=True)
    values = [r.code.value for r in results if isinstance(r, Claimed)]
    assert len(values) == 50 and len(set(values)) == 50
    assert sum(isinstance(r, PoolExhausted) for r in results) == 10
    assert sum(fake.batches) == 60 and len(fake.batches) < 60  # coalesced: fewer commits than claims


async def test_batch_size_is_capped() -> None:
    fake = FakeBatches(stock=1000)
    coalescer = ClaimCoalescer(fake, max_batch=16)
    await asyncio.gather(*[coalescer.claim(1, 1, None) for _ in range(100)])
    assert max(fake.batches) <= 16


async def test_cancelled_caller_does_not_cancel_the_batch() -> None:
    fake = FakeBatches(stock=5)
    fake.gate.clear()
    coalescer = ClaimCoalescer(fake)
    waiting = asyncio.create_task(coalescer.claim(1, 1, None))
    await asyncio.sleep(0)
    waiting.cancel()
    fake.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await asyncio.sleep(0.01)
    assert fake.batches == [1] and fake.next == 1  # the claim ran to completion


async def test_shutdown_fails_queued_claims_instead_of_hanging() -> None:
    fake = FakeBatches(stock=5)
    fake.gate.clear()
    coalescer = ClaimCoalescer(fake)
    first = asyncio.create_task(coalescer.claim(1, 1, None))
    await asyncio.sleep(0)
    queued = asyncio.create_task(coalescer.claim(1, 1, None))
    await asyncio.sleep(0)
    for task in asyncio.all_tasks():
        if task.get_coro().__qualname__.startswith("ClaimCoalescer._drain"):  # type: ignore[union-attr]
            task.cancel()
    with pytest.raises(StorageUnavailable):
        await first
    with pytest.raises(StorageUnavailable):
        await queued
