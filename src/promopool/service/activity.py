"""What the admin pages show about a pool over time and about one code's life."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from promopool.domain import Account, Code, Redemption
from promopool.domain.alerts import ActivityPoint, days_until_empty, hour_of
from promopool.domain.errors import InvalidInput
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


RANGES = (7, 30, 90)  # the chart's date ranges, in days: hourly buckets for the first, daily for the others
HOURLY_UP_TO = 7


@dataclass(frozen=True, slots=True)
class Bucket:
    """Activity of one hour or one UTC day (``start`` to ``start + span``); ``stock``: the available codes at
    its end, estimated back from the pool's count by the imports and claims since (codes deleted, expired or
    put back are not counted, so older values drift)."""

    start: datetime
    span: timedelta
    claims: int
    redemptions: int
    imports: int
    stock: int


@dataclass(frozen=True, slots=True)
class ActivitySeries:
    days: int
    buckets: list[Bucket]  # oldest first, the current hour or day last
    now: datetime
    available: int
    trend: PoolTrend  # the last week's, whatever the range: its rate is the forecast's


def _buckets(points: list[ActivityPoint], start: datetime, span: timedelta, count: int) -> list[list[int]]:
    sums = [[0, 0, 0] for _ in range(count)]
    for p in points:
        index = int((p.hour - start) / span)
        if 0 <= index < count:
            sums[index][0] += p.claims
            sums[index][1] += p.redemptions
            sums[index][2] += p.imports
    return sums


async def activity_series(store: Store, *, account: Account, pool_id: int, days: int) -> ActivitySeries:
    """Claims, redemptions, imports and the estimated stock of the pool over the last ``days`` days (one of
    ``RANGES``): per hour up to a week, per UTC day beyond."""
    if days not in RANGES:
        raise InvalidInput(f"days must be one of {', '.join(map(str, RANGES))}", field="days")
    trend = await pool_trend(store, account=account, pool_id=pool_id)
    pool = await get_pool(store, account=account, pool_id=pool_id)
    now = store.clock()
    if days <= HOURLY_UP_TO:
        span, count = timedelta(hours=1), days * 24
        current = hour_of(now)
    else:
        span, count = timedelta(days=1), days
        current = hour_of(now).replace(hour=0)
    start = current - span * (count - 1)
    sums = _buckets(await store.pool_activity(pool_id=pool_id, since=start), start, span, count)
    stock, buckets = pool.counts.available, []
    for i in reversed(range(count)):  # the stock at a bucket's end, walking back from now
        claims, redemptions, imports = sums[i]
        buckets.append(Bucket(start + span * i, span, claims, redemptions, imports, max(stock, 0)))
        stock += claims - imports
    buckets.reverse()
    return ActivitySeries(
        days=days,
        buckets=buckets,
        now=now,
        available=pool.counts.available,
        trend=trend,
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
