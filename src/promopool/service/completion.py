"""Writes that run to their end even when the caller goes away."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def _consume(task: asyncio.Task[Any]) -> None:
    # Nobody may be awaiting any more (the client disconnected): read the outcome so asyncio does not log it.
    if not task.cancelled():
        task.exception()


async def to_completion(work: Coroutine[Any, Any, T]) -> T:
    """Await ``work`` in a task of its own that a cancelled caller (a client that disconnected) does not
    cancel: a transaction is never cut off mid-statement, and a retry with the same Idempotency-Key finds
    what it did (as claims do, see storage/coalesce.py)."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_consume)
    return await asyncio.shield(task)
