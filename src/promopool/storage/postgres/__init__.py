"""PostgreSQL engine (asyncpg): for several workers or machines sharing one database."""

from promopool.storage.postgres.accounts import PostgresAccounts
from promopool.storage.postgres.alerts import PostgresAlerts
from promopool.storage.postgres.bulk import PostgresBulk
from promopool.storage.postgres.claims import PostgresClaims
from promopool.storage.postgres.codes import PostgresCodes
from promopool.storage.postgres.devices import PostgresDevices
from promopool.storage.postgres.export import PostgresExport
from promopool.storage.postgres.jobs import PostgresJobs
from promopool.storage.postgres.leases import PostgresLeases
from promopool.storage.postgres.pools import PostgresPools
from promopool.storage.postgres.profiles import PostgresProfiles
from promopool.storage.postgres.promotions import PostgresPromotions
from promopool.storage.postgres.redemptions import PostgresRedemptions


class PostgresStore(
    PostgresDevices,
    PostgresBulk,
    PostgresProfiles,
    PostgresLeases,
    PostgresRedemptions,
    PostgresPromotions,
    PostgresClaims,
    PostgresCodes,
    PostgresPools,
    PostgresAccounts,
    PostgresAlerts,
    PostgresJobs,
    PostgresExport,
):
    """Every operation of the Store interface, one mixin per area (the modules beside this one)."""


__all__ = ["PostgresStore"]
