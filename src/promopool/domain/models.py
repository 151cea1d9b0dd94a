"""What promopool stores: accounts, pools, codes, profiles, redemptions. Plain values, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from promopool.domain.normalization import Normalization


class CodeState(enum.StrEnum):
    """Where a code is in its life. ``available`` codes are the only ones a claim hands out."""

    AVAILABLE = "available"
    ISSUED = "issued"
    REDEEMED = "redeemed"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    public_key: str  # the vendors' `shop_id`: public, identifies the account, grants nothing alone
    created_at: datetime
    # The account as the caller's API key may act on it: a read-only key's caller may read, never write
    # (service checks with domain.keys.check_writable).
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """One of an account's API keys as it may be shown: never the secret, only a fingerprint of its hash."""

    id: int
    name: str
    read_only: bool
    fingerprint: str
    created_at: datetime
    last_used_at: datetime | None  # to about a minute (domain.keys.LAST_USED_PRECISION)


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A key just created: the only time its secret is ever visible."""

    key: ApiKeyInfo
    api_key: str


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account just created, with its API key: the only time the key is ever visible."""

    account: Account
    api_key: str


@dataclass(frozen=True, slots=True)
class PoolSettings:
    max_uses: int = 1  # how many times one code may be redeemed
    per_profile_limit: int | None = None  # redemptions of this pool's codes one profile may make
    expires_at: datetime | None = None  # after this, the pool's codes are not handed out
    public_fetch: bool = False  # may unauthenticated front ends fetch codes (PersonaClick `did` mode)
    case_insensitive: bool = False  # `ab12cd` finds `AB12CD` (ASCII letters)
    ignore_separators: bool = False  # `AB-12 CD` finds `AB12CD` (dashes and spaces)
    holder_only: bool = False  # a code attached to a profile may be redeemed by that profile only
    # What an empty pool answers a claim with (at most one of the two): a shared code, never marked issued,
    # or claims continued from another pool of the account.
    fallback_code: str | None = None
    fallback_pool_id: int | None = None
    valid_for_seconds: int | None = None  # a claimed code expires this long after its issued_at

    @property
    def normalization(self) -> Normalization:
        return Normalization(self.case_insensitive, self.ignore_separators)


@dataclass(frozen=True, slots=True)
class PoolCounts:
    available: int = 0
    issued: int = 0
    redeemed: int = 0

    @property
    def total(self) -> int:
        return self.available + self.issued + self.redeemed


@dataclass(frozen=True, slots=True)
class Pool:
    id: int
    account_id: int
    name: str
    settings: PoolSettings
    counts: PoolCounts
    created_at: datetime
    fallback_since: datetime | None = None  # when the empty pool started serving its fallback


@dataclass(frozen=True, slots=True)
class Code:
    id: int
    pool_id: int
    value: str
    state: CodeState
    description: str = ""
    usage_count: int = 0
    expires_at: datetime | None = None
    issued_at: datetime | None = None
    profile_id: int | None = None
    created_at: datetime | None = None


class LeaseState(enum.StrEnum):
    ACTIVE = "active"  # the code is reserved until `expires_at`
    CONFIRMED = "confirmed"  # the code stays issued
    RELEASED = "released"  # given back: the code is claimable again
    EXPIRED = "expired"  # ran out: the code is claimable again


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim that reserves its code for a while; confirm keeps it, release or expiry gives it back."""

    id: int
    code_id: int
    state: LeaseState
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A code handed out by a claim; ``replayed`` when an Idempotency-Key returned an earlier claim."""

    code: Code
    replayed: bool = False
    lease: Lease | None = None  # set for a claim with lease_seconds
    fallback: bool = False  # the pool was empty: ``code`` is its shared fallback code or of its fallback pool


@dataclass(frozen=True, slots=True)
class BulkClaimed:
    """The codes one bulk claim handed out, in queue order; ``replayed`` when an Idempotency-Key returned an
    earlier bulk claim's codes."""

    pool_id: int
    codes: list[Code]
    replayed: bool = False
    fallback: bool = False  # the pool could not serve the claim: its fallback pool (``pool_id``) did


@dataclass(frozen=True, slots=True)
class ProfileDatabase:
    id: int
    account_id: int
    name: str


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    database_id: int
    external_id: str | None = None  # the client's own `profile_id`
    email: str | None = None
    phone: str | None = None
    custom: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Redemption:
    """One use of a code. ``profile`` is the caller's key for the profile (its external id)."""

    id: int
    code_id: int
    pool_id: int
    code: str
    created_at: datetime
    profile_id: int | None = None
    profile: str | None = None
    order_ref: str | None = None
    amount: Decimal | None = None
    metadata: dict[str, Any] | None = None
    rolled_back_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A redemption (or its rollback) with the code as it stands afterwards; ``replayed`` when an
    Idempotency-Key returned an earlier result."""

    redemption: Redemption
    code: Code
    replayed: bool = False


@dataclass(slots=True)
class ImportReport:
    """Outcome of a bulk import: every input line lands in exactly one of the three counts."""

    inserted: int = 0
    duplicates: int = 0
    invalid: int = 0
    invalid_samples: list[InvalidSample] = field(default_factory=list)

    MAX_SAMPLES = 100

    def add_invalid(self, position: int, reason: str) -> None:
        self.invalid += 1
        if len(self.invalid_samples) < self.MAX_SAMPLES:
            self.invalid_samples.append(InvalidSample(position=position, reason=reason))


@dataclass(frozen=True, slots=True)
class InvalidSample:
    position: int  # 1-based line or array index in the upload
    reason: str
