"""What every store has, whatever its engine: the driver, the clock, the lifecycle.

The store's operations are methods of one class per area (``storage/ops/<area>.py``), each a line or two
handing the area's generator to the driver: ``await self._driver.write(op(...))`` or ``read``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from promopool.storage.driver import Driver, FetchVal, Op

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class StoreCore:
    """One database holding every account's data; every operation is scoped by the caller's account."""

    engine: str

    def __init__(self, driver: Driver, *, clock: Clock = utc_now) -> None:
        self._driver = driver
        self.engine = driver.engine
        self.url = driver.url
        self.pool_size = driver.pool_size  # database connections this store may hold open
        self.clock = clock

    async def connect(self) -> None:
        await self._driver.connect()

    async def close(self) -> None:
        await self._driver.close()

    async def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied now."""
        return await self._driver.migrate(self.clock())

    async def schema_version(self) -> int | None:
        """The highest migration applied (None before any); raises StorageUnavailable unless the database
        answers, which makes it the readiness check too."""
        return await self._driver.read(_schema_version())


def _schema_version() -> Op[int | None]:
    version: int | None = yield FetchVal("SELECT max(version) FROM schema_migrations")
    return version
