"""In-process locks by key, for keyed requests of several transactions (an import)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyLocks:
    """An asyncio lock per key, dropped once no one holds or waits for it.

    A keyed import reserves its key in its first batch and answers in a later transaction; a twin with the
    same key arriving meanwhile in this process waits here, then replays the first answer rather than
    import alongside it. (Across processes, twins still store each code once: the later one finds every
    code a duplicate, and the first answer kept is the one both give.)"""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def held(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
