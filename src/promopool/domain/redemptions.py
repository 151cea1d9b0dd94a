"""Redemption rules: when a code may be used, what a refusal tells whom, what a redemption may carry."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import (
    CodeExpired,
    CodeUnusable,
    CodeUsedUp,
    InvalidInput,
    ProfileLimitReached,
    PromopoolError,
)
from promopool.domain.fallback import valid_until
from promopool.domain.models import Code, Pool, Redemption

MAX_PROFILE_KEY = 255
MAX_ORDER_REF = 255
MAX_AMOUNT_DIGITS = 30  # generous for any currency, small enough for both engines to store exactly
DEFAULT_PROFILE_DATABASE = "default"  # where profiles named by a redemption's `profile` key live


class Refusal(enum.StrEnum):
    NOT_FOUND = "not_found"
    EXPIRED = "expired"
    NOT_HOLDER = "not_holder"
    USED_UP = "used_up"
    PROFILE_LIMIT = "profile_limit"


@dataclass(frozen=True, slots=True)
class NewRedemption:
    """A validate or redeem request, checked: the typed value and where to look, who, what to record."""

    value: str
    pool_id: int | None = None  # look in this pool only (else in every pool of the account)
    profile: str | None = None  # the caller's key for the profile (a profile's external id)
    order_ref: str | None = None
    amount: Decimal | None = None
    metadata: dict[str, Any] | None = None
    # Redeem as this profile (a profile row of the account, e.g. the holder of an attached code) instead of
    # the `profile` key; set only by the service, from the code's own holder.
    holder_id: int | None = None

    def recorded(self, *, redemption_id: int, code: Code, profile_id: int | None, at: datetime) -> Redemption:
        """The redemption this request became."""
        return Redemption(
            id=redemption_id,
            code_id=code.id,
            pool_id=code.pool_id,
            code=code.value,
            created_at=at,
            profile_id=profile_id,
            profile=self.profile,
            order_ref=self.order_ref,
            amount=self.amount,
            metadata=self.metadata,
        )


@dataclass(frozen=True, slots=True)
class CodeUse:
    """A code as a redemption sees it: the code, its pool, and where the redeeming profile stands."""

    code: Code
    pool: Pool
    profile: str | None = None
    profile_id: int | None = None  # None for a profile never seen before
    profile_uses: int = 0  # the profile's unrolled redemptions of this pool's codes

    @property
    def holder(self) -> bool:
        """Is the redeeming profile the one the code is attached to?"""
        return self.profile_id is not None and self.code.profile_id == self.profile_id

    @property
    def uses_left(self) -> int:
        return max(self.pool.settings.max_uses - self.code.usage_count, 0)

    @property
    def profile_uses_left(self) -> int | None:
        limit = self.pool.settings.per_profile_limit
        if limit is None or self.profile is None:
            return None
        return max(limit - self.profile_uses, 0)

    @property
    def expires_at(self) -> datetime | None:
        """When the code stops being usable: its own expiry, its relative one (``valid_for_seconds`` after it
        was issued) or its pool's, whichever comes first."""
        own = valid_until(self.code, self.pool.settings.valid_for_seconds)
        ends = [t for t in (own, self.pool.settings.expires_at) if t is not None]
        return min(ends, default=None)


def refusal(use: CodeUse, now: datetime) -> Refusal | None:
    """Why ``use`` may not happen at ``now``, or None when it may.

    The stores' conditional updates encode the same rules in SQL (the check and the count are one
    statement); this function answers validate, and names the reason after a conditional update refused.
    """
    rules = use.pool.settings
    if use.expires_at is not None and use.expires_at <= now:
        return Refusal.EXPIRED
    if rules.holder_only and use.code.profile_id is not None and not use.holder:
        return Refusal.NOT_HOLDER
    if use.code.usage_count >= rules.max_uses:
        return Refusal.USED_UP
    if use.profile_uses_left == 0:
        return Refusal.PROFILE_LIMIT
    return None


def refused(reason: Refusal, *, holder: bool) -> PromopoolError:
    """The error a caller sees. Only the profile holding the code learns why; everyone else gets the answer a
    code that does not exist gets, so a guess cannot tell a real code from a wrong one."""
    if not holder or reason in (Refusal.NOT_FOUND, Refusal.NOT_HOLDER):
        return CodeUnusable()
    if reason is Refusal.EXPIRED:
        return CodeExpired("this code has expired")
    if reason is Refusal.USED_UP:
        return CodeUsedUp("this code has no uses left")
    return ProfileLimitReached("this profile has used this pool's codes as often as it may")


def refusal_after(use: CodeUse | None, now: datetime) -> PromopoolError:
    """The error for a redemption a store's conditional update refused, from the code as re-read after it."""
    if use is None:
        return refused(Refusal.NOT_FOUND, holder=False)
    return refused(refusal(use, now) or Refusal.NOT_FOUND, holder=use.holder)


@dataclass(frozen=True, slots=True)
class RedemptionFilter:
    """Which of a pool's redemptions to list: made in ``[since, until)``, by the profile with this key, for
    this order reference, rolled back or not (None: either)."""

    since: datetime | None = None
    until: datetime | None = None
    profile: str | None = None
    order_ref: str | None = None
    rolled_back: bool | None = None

    def checked(self) -> RedemptionFilter:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidInput("the end of the date range must come after its start", field="until")
        check_profile_key(self.profile)
        check_order_ref(self.order_ref)
        return self


def check_profile_key(profile: str | None) -> str | None:
    if profile is None:
        return None
    if not profile or len(profile) > MAX_PROFILE_KEY or has_control_characters(profile):
        raise InvalidInput(
            f"profile must be 1-{MAX_PROFILE_KEY} characters, no control characters", field="profile"
        )
    return profile


def check_order_ref(order_ref: str | None) -> str | None:
    if order_ref is None:
        return None
    if not order_ref or len(order_ref) > MAX_ORDER_REF or has_control_characters(order_ref):
        raise InvalidInput(
            f"order_ref must be 1-{MAX_ORDER_REF} characters, no control characters", field="order_ref"
        )
    return order_ref


def check_amount(amount: Decimal | None) -> Decimal | None:
    if amount is None:
        return None
    try:
        finite = amount.is_finite() and len(amount.as_tuple().digits) <= MAX_AMOUNT_DIGITS
        in_range = finite and abs(amount.adjusted()) <= MAX_AMOUNT_DIGITS
    except InvalidOperation:
        in_range = False
    if not in_range:
        raise InvalidInput(
            f"amount must be a finite number of at most {MAX_AMOUNT_DIGITS} digits", field="amount"
        )
    return amount


def check_metadata(metadata: dict[str, Any] | None) -> dict[str, Any] | None:
    """JSON object metadata, refused when any key or string in it holds a NUL (PostgreSQL's jsonb cannot)."""
    if metadata is None:
        return None

    def clean(value: Any) -> bool:
        if isinstance(value, str):
            return "\x00" not in value
        if isinstance(value, dict):
            return all(clean(k) and clean(v) for k, v in value.items())
        if isinstance(value, list):
            return all(clean(v) for v in value)
        return True

    if not clean(metadata):
        raise InvalidInput("metadata must not contain NUL characters", field="metadata")
    return metadata
