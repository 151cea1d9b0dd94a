"""SQLite engine: the embedded default. WAL mode, synchronous=FULL, one writer thread, pooled readers."""

from promopool.storage.sqlite.accounts import SQLiteAccounts
from promopool.storage.sqlite.claims import SQLiteClaims
from promopool.storage.sqlite.codes import SQLiteCodes
from promopool.storage.sqlite.export import SQLiteExport
from promopool.storage.sqlite.jobs import SQLiteJobs
from promopool.storage.sqlite.pools import SQLitePools


class SQLiteStore(SQLiteJobs, SQLiteExport, SQLiteClaims, SQLiteCodes, SQLitePools, SQLiteAccounts):
    """Every operation of the Store interface, one mixin per area (the modules beside this one)."""


__all__ = ["SQLiteStore"]
