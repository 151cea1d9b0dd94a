"""SQLite engine: the embedded default. WAL mode, synchronous=FULL, one writer thread, pooled readers."""

from promopool.storage.sqlite.accounts import SQLiteAccounts
from promopool.storage.sqlite.alerts import SQLiteAlerts
from promopool.storage.sqlite.bulk import SQLiteBulk
from promopool.storage.sqlite.claims import SQLiteClaims
from promopool.storage.sqlite.codes import SQLiteCodes
from promopool.storage.sqlite.devices import SQLiteDevices
from promopool.storage.sqlite.export import SQLiteExport
from promopool.storage.sqlite.jobs import SQLiteJobs
from promopool.storage.sqlite.leases import SQLiteLeases
from promopool.storage.sqlite.pools import SQLitePools
from promopool.storage.sqlite.profiles import SQLiteProfiles
from promopool.storage.sqlite.promotions import SQLitePromotions
from promopool.storage.sqlite.redemptions import SQLiteRedemptions


class SQLiteStore(
    SQLiteDevices,
    SQLiteBulk,
    SQLiteProfiles,
    SQLiteLeases,
    SQLiteRedemptions,
    SQLitePromotions,
    SQLiteClaims,
    SQLiteCodes,
    SQLitePools,
    SQLiteAccounts,
    SQLiteAlerts,
    SQLiteJobs,
    SQLiteExport,
):
    """Every operation of the Store interface, one mixin per area (the modules beside this one)."""


__all__ = ["SQLiteStore"]
