"""SQLite engine: the embedded default. WAL mode, synchronous=FULL, one writer thread, pooled readers."""

from promopool.storage.sqlite.redemptions import SQLiteRedemptions


class SQLiteStore(SQLiteRedemptions):
    """The shared store on the SQLite driver, with the areas not yet written once (the modules beside this
    one)."""


__all__ = ["SQLiteStore"]
