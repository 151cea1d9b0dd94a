"""What the admin pages show about a pool over time and about one code's life."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from promopool.domain import Account, Code, Redemption
from promopool.domain.alerts import ActivityPoint, days_until_empty, hour_of
from promopool.service.codes import get_code
from promopool.service.pools import get_pool
from promopool.storage import Store

TREND_HOURS = 7 * 24
RECENT_HOURS = 24


@dataclass(frozen=True, slots=True)
class PoolTrend:
    """Hourly claims and redemptions (every hour of the window, oldest first) and the outlook."""

    hours: list[ActivityPoint]
    claims_last_24h: int
    claims_per_day: float  # the recent rate: the last 24 hours, or the window's average if those were quiet
    days_until_empty: float | None  # at that rate; None when nothing is being claimed


@dataclass(frozen=True, slots=True)
class CodeHistory:
    code: Code
    redemptions: list[Redemption]
    events: list[tuple[datetime, str]]  # the code's life, oldest first


async def pool_trend(store: Store, *, account: Account, pool_id: int, hours: int = TREND_HOURS) -> PoolTrend:
    """The pool's activity over the last ``hours`` hours and its days-until-empty estimate."""
    pool = await get_pool(store, account=account, pool_id=pool_id)
    current = hour_of(store.clock())
    start = current - timedelta(hours=hours - 1)
    found = {p.hour: p for p in await store.pool_activity(pool_id=pool_id, since=start)}
    series = [
        found.get(hour, ActivityPoint(hour, 0, 0))
        for hour in (start + timedelta(hours=i) for i in range(hours))
    ]
    recent = sum(p.claims for p in series[-RECENT_HOURS:])
    rate = float(recent) if recent else sum(p.claims for p in series) * 24 / hours
    return PoolTrend(
        hours=series,
        claims_last_24h=recent,
        claims_per_day=rate,
        days_until_empty=days_until_empty(pool.counts.available, rate),
    )


# The history shows the first redemptions; /v1/pools/{id}/codes/{code}/redemptions pages through all.
HISTORY_REDEMPTIONS = 100


async def code_history(store: Store, *, account: Account, pool_id: int, value: str) -> CodeHistory:
    """One code with its redemptions and a timeline of what happened to it."""
    code = await get_code(store, account=account, pool_id=pool_id, value=value)
    redemptions = await store.list_redemptions(code_id=code.id, after=None, limit=HISTORY_REDEMPTIONS)
    events: list[tuple[datetime, str]] = []
    if code.created_at is not None:
        events.append((code.created_at, "imported"))
    if code.issued_at is not None:
        events.append(
            (code.issued_at, "issued" if code.profile_id is None else f"issued to profile {code.profile_id}")
        )
    for r in redemptions:
        order = f" (order {r.order_ref})" if r.order_ref else ""
        events.append((r.created_at, f"redeemed{order}"))
        if r.rolled_back_at is not None:
            events.append((r.rolled_back_at, f"redemption rolled back{order}"))
    if code.expires_at is not None:
        events.append((code.expires_at, "expires"))
    events.sort(key=lambda event: event[0])
    return CodeHistory(code=code, redemptions=redemptions, events=events)
