"""Storage engines behind one interface, chosen by URL scheme; each driver is imported only when used."""

from __future__ import annotations

from importlib import import_module
from urllib.parse import urlsplit

from promopool.domain.errors import InvalidInput
from promopool.storage.core import Clock, utc_now
from promopool.storage.driver import DEFAULT_LOCK_TIMEOUT, Driver
from promopool.storage.store import Store

SUPPORTED_ENGINES = {
    "sqlite": "promopool.storage.sqlite.driver:SQLiteDriver",
    "postgresql": "promopool.storage.postgres.driver:PostgresDriver",
    "postgres": "promopool.storage.postgres.driver:PostgresDriver",
}

DEFAULT_DATABASE_URL = "sqlite:///promopool.db"


def open_store(
    url: str, *, clock: Clock = utc_now, pool_size: int = 10, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Store:
    """A store for ``url`` (not yet connected)."""
    scheme = urlsplit(url).scheme
    target = SUPPORTED_ENGINES.get(scheme)
    if target is None:
        known = ", ".join(sorted(SUPPORTED_ENGINES))
        raise InvalidInput(f"unsupported database URL scheme {scheme!r}; use one of: {known}")
    module_name, _, class_name = target.partition(":")
    driver: type[Driver] = getattr(import_module(module_name), class_name)
    return Store(driver(url, pool_size=pool_size, lock_timeout=lock_timeout), clock=clock)


__all__ = ["DEFAULT_DATABASE_URL", "SUPPORTED_ENGINES", "Store", "open_store"]
