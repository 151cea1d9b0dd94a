"""Transitional: the operations of the areas not yet written once in ``storage/ops/``, declared here and
implemented by each engine's mixins (``storage/<engine>/<area>.py``), and the names those mixins import.

An area converted to ``storage/ops/<area>.py`` leaves this file and both engines' mixin modules.
"""

from __future__ import annotations

import abc

from promopool.domain import (
    Redeemed,
    Redemption,
)
from promopool.domain.redemptions import CodeUse, NewRedemption
from promopool.storage.core import Clock, utc_now
from promopool.storage.migrations import Migration, load_migrations
from promopool.storage.ops.claims import ClaimPlan, ClaimResult
from promopool.storage.ops.idempotency import (
    claim_scope,
    key_reused,
    redeem_scope,
    replays_claim,
    replays_redemption,
    rollback_scope,
)

__all__ = [
    "ClaimPlan",
    "ClaimResult",
    "Clock",
    "Migration",
    "claim_scope",
    "key_reused",
    "load_migrations",
    "redeem_scope",
    "replays_claim",
    "replays_redemption",
    "rollback_scope",
    "utc_now",
]


class LegacyAreas(abc.ABC):
    """The operations each engine still implements in its own mixins."""

    # -- redemptions -------------------------------------------------------------------------------------
    # A typed value means the code of the account matching it under its pool's normalization
    # (domain.normalization.best_match); `request.pool_id` narrows the search to one pool. A profile is named
    # by its key (external id) in the account's `default` profile database.

    @abc.abstractmethod
    async def code_use(self, *, account_id: int, request: NewRedemption) -> CodeUse | None:
        """The code ``request.value`` means, its pool, and the profile's standing (the profile is looked
        up, never created); None when no code matches. Reads only: validate's answer."""

    @abc.abstractmethod
    async def redeem(
        self, *, account_id: int, request: NewRedemption, idempotency_key: str | None
    ) -> Redeemed:
        """Record one use of the code ``request.value`` means, in one transaction whose conditional updates
        are the checks (domain.redemptions.refusal lists them): code usage below the pool's max_uses, not
        expired, the holder when the pool is holder_only, the profile's uses below per_profile_limit. The
        profile is created when new. A refusal raises domain.redemptions.refused(reason). The same key for
        the same code returns the first redemption, ``replayed``; for another code IdempotencyKeyReused."""

    @abc.abstractmethod
    async def rollback_redemption(
        self, *, account_id: int, redemption_id: int, idempotency_key: str | None
    ) -> Redeemed:
        """Give the redemption's use back, exactly once (AlreadyRolledBack after that, RedemptionNotFound
        for another account's). A code back to no uses returns to ``issued``, or when it was never handed
        out to ``available`` at the pool's tail."""

    @abc.abstractmethod
    async def get_redemption(self, *, account_id: int, redemption_id: int) -> Redemption | None: ...

    @abc.abstractmethod
    async def list_redemptions(self, *, code_id: int, after: int | None, limit: int) -> list[Redemption]:
        """The code's redemptions in id order, those after ``after`` only."""
