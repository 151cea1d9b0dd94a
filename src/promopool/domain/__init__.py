"""The domain: what a promo code is and what may happen to it. No web framework, no SQL."""

from promopool.domain import errors
from promopool.domain.models import (
    Account,
    Claimed,
    Code,
    CodeState,
    ImportReport,
    InvalidSample,
    NewAccount,
    Pool,
    PoolCounts,
    PoolSettings,
    Profile,
    ProfileDatabase,
    Redemption,
)

__all__ = [
    "Account",
    "Claimed",
    "Code",
    "CodeState",
    "ImportReport",
    "InvalidSample",
    "NewAccount",
    "Pool",
    "PoolCounts",
    "PoolSettings",
    "Profile",
    "ProfileDatabase",
    "Redemption",
    "errors",
]
