"""A page of an account's pools for the admin list: filtered, sorted and counted in SQL, with each pool's
low-stock threshold (``domain/listing.py`` says what may be asked)."""

from __future__ import annotations

from promopool.domain.listing import PoolPage, PoolQuery, PoolRow
from promopool.storage.core import StoreCore
from promopool.storage.driver import Fetch, FetchVal, Op
from promopool.storage.rows import POOL_COLUMNS, pool_of, qualified

# Each sort's ORDER BY; pools without an expiry come last either way, the id breaks ties.
ORDER = {
    "name": "lower(p.name) {d}, p.id {d}",
    "created": "p.created_at {d}, p.id {d}",
    "available": "p.n_available {d}, p.id {d}",
    "expiry": "(p.expires_at IS NULL), p.expires_at {d}, p.id {d}",
}


def like_pattern(text: str) -> str:
    """A LIKE pattern (escape ``\\``) matching names that contain ``text``, lower-cased."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def page_pools(account_id: int, query: PoolQuery) -> Op[PoolPage]:
    """One page of the account's pools as ``query`` filters and sorts them, with their thresholds."""
    where = " FROM pools p LEFT JOIN pool_alerts a ON a.pool_id = p.id WHERE p.account_id = $1"
    args: list[object] = [account_id]
    if query.name_contains:
        args.append(like_pattern(query.name_contains))
        where += f" AND lower(p.name) LIKE ${len(args)} ESCAPE '\\'"
    if query.low_stock:
        where += " AND p.n_available <= a.threshold"
    order = ORDER[query.sort].format(d="DESC" if query.descending else "ASC")
    n = len(args)
    rows = yield Fetch(
        f"SELECT {qualified(POOL_COLUMNS, 'p')}, a.threshold{where} ORDER BY {order}"
        f" LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        query.per_page,
        query.offset,
    )
    total = yield FetchVal(f"SELECT count(*){where}", *args)
    found = [PoolRow(pool_of(row), row["threshold"]) for row in rows]
    return PoolPage(query=query, rows=found, total=int(total))


class Listing(StoreCore):
    async def page_pools(self, *, account_id: int, query: PoolQuery) -> PoolPage:
        return await self._driver.read(page_pools(account_id, query))
