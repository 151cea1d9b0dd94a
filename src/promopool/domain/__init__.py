"""The domain: what a promo code is and what may happen to it. No web framework, no SQL."""

from promopool.domain import errors
from promopool.domain.jobs import CliCommand, CliResult, CliRuns
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
    NewApiKey,
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
    "CliCommand",
    "CliResult",
    "CliRuns",
    "Code",
    "CodeState",
    "ImportReport",
    "InvalidSample",
    "Lease",
    "LeaseState",
    "NewAccount",
    "NewApiKey",
    "Pool",
    "PoolCounts",
    "PoolSettings",
    "Profile",
    "ProfileDatabase",
    "Redeemed",
    "Redemption",
    "errors",
]
