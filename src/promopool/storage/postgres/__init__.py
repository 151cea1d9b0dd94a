"""PostgreSQL engine (asyncpg): for several workers or machines sharing one database."""

from promopool.storage.postgres.accounts import PostgresAccounts
from promopool.storage.postgres.claims import PostgresClaims
from promopool.storage.postgres.codes import PostgresCodes
from promopool.storage.postgres.export import PostgresExport
from promopool.storage.postgres.jobs import PostgresJobs
from promopool.storage.postgres.pools import PostgresPools


class PostgresStore(
    PostgresJobs, PostgresExport, PostgresClaims, PostgresCodes, PostgresPools, PostgresAccounts
):
    """Every operation of the Store interface, one mixin per area (the modules beside this one)."""


__all__ = ["PostgresStore"]
