"""Searching one account's pools for the admin search box: codes by lookup-key prefix, codes and
redemptions by profile, redemptions by order reference. Every read is narrowed to the account's pools and
walks an index (migration 0017), a few rows per pool at most: never a scan of the codes.
"""

from __future__ import annotations

from collections.abc import Sequence

from promopool.domain import Code, Redemption
from promopool.domain.normalization import prefix_range
from promopool.storage.core import StoreCore
from promopool.storage.driver import SQL, Fetch, Op
from promopool.storage.rows import CODE_COLUMNS, code_of, qualified, redemption_of

# The first ``$4`` codes of each of the account's pools whose lookup key is in [$2, $3), in key order.
# PostgreSQL compares the keys bytewise (COLLATE "C", as index codes_pool_prefix does) whatever the
# database's locale; SQLite's text comparison is bytewise already, and it has no LATERAL: the correlated
# subquery walks the same index once per pool.
CODES_BY_PREFIX = SQL(
    postgres=f"SELECT {qualified(CODE_COLUMNS, 'c')} FROM pools p CROSS JOIN LATERAL"
    " (SELECT * FROM codes k WHERE k.pool_id = p.id"
    ' AND (k.lookup_key COLLATE "C") >= $2 AND (k.lookup_key COLLATE "C") < $3'
    ' ORDER BY (k.lookup_key COLLATE "C") LIMIT $4) c'
    ' WHERE p.account_id = $1 ORDER BY p.id, (c.lookup_key COLLATE "C")',
    sqlite=f"SELECT {qualified(CODE_COLUMNS, 'c')} FROM pools p JOIN codes c ON c.id IN"
    " (SELECT k.id FROM codes k WHERE k.pool_id = p.id AND k.lookup_key >= $2 AND k.lookup_key < $3"
    " ORDER BY k.lookup_key LIMIT $4)"
    " WHERE p.account_id = $1 ORDER BY p.id, c.lookup_key",
)
# The account's profiles (of any of its profile databases) with this external id.
PROFILES = (
    "SELECT pr.id FROM profile_databases d JOIN profiles pr ON pr.database_id = d.id"
    " WHERE d.account_id = $1 AND pr.external_id = $2"
)
# Read from the profiles' (or the order's) rows outward, never from the account's pools inward (which walks
# every code of every pool): the MATERIALIZED row set holds both planners to that order.
CODES_OF_PROFILES = (
    "WITH held AS MATERIALIZED (SELECT * FROM codes WHERE profile_id = ANY($2::bigint[]))"
    f" SELECT {qualified(CODE_COLUMNS, 'held')} FROM held JOIN pools p ON p.id = held.pool_id"
    " WHERE p.account_id = $1 ORDER BY held.pool_id, held.id LIMIT $3"
)


def _redemptions(where: str) -> str:
    return (
        f"WITH made AS MATERIALIZED (SELECT * FROM redemptions WHERE {where})"
        " SELECT made.id, made.code_id, c.pool_id, c.value AS code, made.created_at, made.profile_id,"
        " pr.external_id AS profile, made.order_ref, made.amount, made.metadata, made.rolled_back_at"
        " FROM made JOIN codes c ON c.id = made.code_id JOIN pools p ON p.id = c.pool_id"
        " LEFT JOIN profiles pr ON pr.id = made.profile_id"
        " WHERE p.account_id = $1 ORDER BY c.pool_id, made.id DESC LIMIT $3"
    )


REDEMPTIONS_OF_PROFILES = _redemptions("profile_id = ANY($2::bigint[])")
REDEMPTIONS_BY_ORDER = _redemptions("order_ref = $2")


def codes_by_prefix(account_id: int, prefix: str, per_pool: int) -> Op[list[Code]]:
    """Up to ``per_pool`` codes of each of the account's pools whose lookup key starts with ``prefix``'s."""
    low, high = prefix_range(prefix)
    rows = yield Fetch(CODES_BY_PREFIX, account_id, low, high, per_pool)
    return [code_of(row) for row in rows]


def profiles_named(account_id: int, external_id: str) -> Op[list[int]]:
    rows = yield Fetch(PROFILES, account_id, external_id)
    return [int(row["id"]) for row in rows]


def codes_of_profiles(account_id: int, profile_ids: Sequence[int], limit: int) -> Op[list[Code]]:
    """The account's codes attached to any of ``profile_ids`` (issued to them), at most ``limit``."""
    if not profile_ids:
        return []
    rows = yield Fetch(CODES_OF_PROFILES, account_id, list(profile_ids), limit)
    return [code_of(row) for row in rows]


def redemptions_of_profiles(account_id: int, profile_ids: Sequence[int], limit: int) -> Op[list[Redemption]]:
    """The account's redemptions made by any of ``profile_ids``, newest first per pool, at most ``limit``."""
    if not profile_ids:
        return []
    rows = yield Fetch(REDEMPTIONS_OF_PROFILES, account_id, list(profile_ids), limit)
    return [redemption_of(row) for row in rows]


def search_profile(account_id: int, external_id: str, limit: int) -> Op[tuple[list[Code], list[Redemption]]]:
    """The codes held by, and the redemptions made by, the account's profiles named ``external_id``."""
    profile_ids = yield from profiles_named(account_id, external_id)
    codes = yield from codes_of_profiles(account_id, profile_ids, limit)
    redemptions = yield from redemptions_of_profiles(account_id, profile_ids, limit)
    return codes, redemptions


def redemptions_by_order(account_id: int, order_ref: str, limit: int) -> Op[list[Redemption]]:
    """The account's redemptions of this order reference, newest first per pool, at most ``limit``."""
    rows = yield Fetch(REDEMPTIONS_BY_ORDER, account_id, order_ref, limit)
    return [redemption_of(row) for row in rows]


class Search(StoreCore):
    async def search_codes_by_prefix(self, *, account_id: int, prefix: str, per_pool: int) -> list[Code]:
        """Up to ``per_pool`` codes of each of the account's pools whose lookup key starts with the
        ``prefix``'s lookup key, by pool and key."""
        return await self._driver.read(codes_by_prefix(account_id, prefix, per_pool))

    async def search_profile(
        self, *, account_id: int, external_id: str, limit: int
    ) -> tuple[list[Code], list[Redemption]]:
        """The codes attached to, and redemptions made by, the account's profiles of this external id."""
        return await self._driver.read(search_profile(account_id, external_id, limit))

    async def search_redemptions_by_order(
        self, *, account_id: int, order_ref: str, limit: int
    ) -> list[Redemption]:
        return await self._driver.read(redemptions_by_order(account_id, order_ref, limit))
