"""PostgreSQL engine (asyncpg): for several workers or machines sharing one database."""

from promopool.storage.postgres.redemptions import PostgresRedemptions


class PostgresStore(PostgresRedemptions):
    """The shared store on the PostgreSQL driver, with the areas not yet written once (the modules beside
    this one)."""


__all__ = ["PostgresStore"]
