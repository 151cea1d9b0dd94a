"""The store: every area's operations (``storage/ops/``) on one class, over an engine's driver."""

from __future__ import annotations

from promopool.storage.ops.accounts import Accounts
from promopool.storage.ops.alerts import Alerts
from promopool.storage.ops.claims import Claims
from promopool.storage.ops.codes import Codes
from promopool.storage.ops.devices import Devices
from promopool.storage.ops.export import Export
from promopool.storage.ops.jobs import Jobs
from promopool.storage.ops.leases import Leases
from promopool.storage.ops.listing import Listing
from promopool.storage.ops.pools import Pools
from promopool.storage.ops.profiles import Profiles
from promopool.storage.ops.promotions import Promotions
from promopool.storage.ops.recipients import Recipients
from promopool.storage.ops.redemptions import Redemptions
from promopool.storage.ops.search import Search
from promopool.storage.ops.tables import Tables


class Store(
    Accounts,
    Pools,
    Codes,
    Claims,
    Leases,
    Listing,
    Profiles,
    Devices,
    Recipients,
    Alerts,
    Export,
    Jobs,
    Promotions,
    Redemptions,
    Search,
    Tables,
):
    """One database holding every account's data; every method is scoped by the caller's account."""
