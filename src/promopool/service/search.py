"""Searching an account for one typed value, as the admin search box does: a code (exact under its pool's
normalization, or as a prefix), a profile (the codes it holds, the redemptions it made) and an order
reference (its redemptions), grouped by pool, a few results per pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from promopool.domain import Account, Code, Pool, Redemption
from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput
from promopool.storage import Store

PER_POOL = 10  # results of each kind shown per pool
# Profiles and order references match exactly, so few rows; the cap bounds the read whatever the data.
ROWS_READ = 500
MAX_QUERY = 200

CodeMatch = Literal["code", "prefix", "holder"]
RedemptionMatch = Literal["order", "profile"]


@dataclass(slots=True)
class PoolResults:
    """What the search found in one pool; ``more``: some matches were left off (``PER_POOL`` per kind)."""

    pool: Pool
    codes: list[tuple[Code, CodeMatch]] = field(default_factory=list)
    redemptions: list[tuple[Redemption, RedemptionMatch]] = field(default_factory=list)
    more: bool = False

    def add_code(self, code: Code, match: CodeMatch) -> None:
        if any(found.id == code.id for found, _ in self.codes):
            return
        if len(self.codes) >= PER_POOL:
            self.more = True
        else:
            self.codes.append((code, match))

    def add_redemption(self, redemption: Redemption, match: RedemptionMatch) -> None:
        if any(found.id == redemption.id for found, _ in self.redemptions):
            return
        if len(self.redemptions) >= PER_POOL:
            self.more = True
        else:
            self.redemptions.append((redemption, match))


@dataclass(frozen=True, slots=True)
class SearchResults:
    query: str
    groups: list[PoolResults]  # by pool id; pools with no match left out


def search_query(raw: str) -> str:
    """The query as searched (trimmed); InvalidInput for one no code, profile or order could hold."""
    query = raw.strip()
    if len(query) > MAX_QUERY:
        raise InvalidInput(f"the search is longer than {MAX_QUERY} characters", field="q")
    if has_control_characters(query):
        raise InvalidInput("the search holds a control character", field="q")
    return query


async def search(store: Store, *, account: Account, query: str) -> SearchResults:
    """The account's codes, profiles' codes and redemptions matching ``query``, grouped by pool."""
    query = search_query(query)
    if not query:
        return SearchResults(query=query, groups=[])
    pools = {pool.id: pool for pool in await store.list_pools(account_id=account.id)}
    groups: dict[int, PoolResults] = {}

    def group(pool_id: int) -> PoolResults:
        if pool_id not in groups:  # (a pool created since the list was read shows next time)
            groups[pool_id] = PoolResults(pool=pools[pool_id])
        return groups[pool_id]

    # One more than shown per pool, so that a full pool says there are more.
    by_prefix = await store.search_codes_by_prefix(account_id=account.id, prefix=query, per_pool=PER_POOL + 1)
    by_prefix = [c for c in by_prefix if c.pool_id in pools]
    exact = [c for c in by_prefix if pools[c.pool_id].settings.normalization.matches(c.value, query)]
    for code in exact:  # the exact matches first
        group(code.pool_id).add_code(code, "code")
    for code in by_prefix:
        group(code.pool_id).add_code(code, "prefix")
    held, made = await store.search_profile(account_id=account.id, external_id=query, limit=ROWS_READ)
    for code in held:
        if code.pool_id in pools:
            group(code.pool_id).add_code(code, "holder")
    orders = await store.search_redemptions_by_order(account_id=account.id, order_ref=query, limit=ROWS_READ)
    kinds: list[tuple[list[Redemption], RedemptionMatch]] = [(made, "profile"), (orders, "order")]
    for redemptions, match in kinds:
        for redemption in redemptions:
            if redemption.pool_id in pools:
                group(redemption.pool_id).add_redemption(redemption, match)
    return SearchResults(query=query, groups=[groups[pool_id] for pool_id in sorted(groups)])
