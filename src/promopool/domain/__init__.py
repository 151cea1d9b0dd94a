"""The domain: what a promo code is and what may happen to it. No web framework, no SQL."""

from promopool.domain import errors
from promopool.domain.models import (
    Account,
    ApiKeyInfo,
    Claimed,
    Code,
    CodeState,
    ImportReport,
    InvalidSample,
    Lease,
    LeaseState,
    NewAccount,
    Pool,
    PoolCounts,
    PoolSettings,
    Profile,
    ProfileDatabase,
    Redeemed,
    Redemption,
)

__all__ = [
    "Account",
    "ApiKeyInfo",
    "Claimed",
    "Code",
    "CodeState",
    "ImportReport",
    "InvalidSample",
    "Lease",
    "LeaseState",
    "NewAccount",
    "Pool",
    "PoolCounts",
    "PoolSettings",
    "Profile",
    "ProfileDatabase",
    "Redeemed",
    "Redemption",
    "errors",
]
