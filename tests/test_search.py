"""The account-wide search (service/search.py, storage/ops/search.py) on both engines: each kind of match,
grouping and the per-pool bound, tenant isolation, and plans that never scan the codes table."""

from __future__ import annotations

import re

import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import InvalidInput
from promopool.domain.normalization import prefix_range
from promopool.domain.profiles import identity
from promopool.service.search import PER_POOL
from promopool.storage import Store
from promopool.storage.driver import SQL, Execute, Fetch, Op, Statement
from promopool.storage.ops.search import (
    CODES_BY_PREFIX,
    CODES_OF_PROFILES,
    PROFILES,
    REDEMPTIONS_BY_ORDER,
    REDEMPTIONS_OF_PROFILES,
)
from tests.conftest import Tenant


def test_prefix_range_covers_the_prefix_only() -> None:
    low, high = prefix_range("ab-1")
    assert low == "AB1"
    assert all(low <= key < high for key in ("AB1", "AB10", "AB1ZZZ", "AB1\uffff"))
    assert not any(low <= key < high for key in ("AB", "AB2", "AB0", "AC"))


async def test_search_finds_exact_and_prefix_codes_grouped_by_pool(store: Store, tenant: Tenant) -> None:
    folding = PoolSettings(case_insensitive=True, ignore_separators=True)
    second = await service.create_pool(store, account=tenant.account, name="second", settings=folding)
    await service.import_codes(
        store, account=tenant.account, pool_id=second.id, values=["CODE-001", "CODE-0010", "OTHER"]
    )
    found = await service.search(store, account=tenant.account, query="code001")
    by_pool = {g.pool.id: g for g in found.groups}
    assert set(by_pool) == {tenant.pool.id, second.id}
    # The first pool matches exactly only (no folding): CODE001 is a prefix match of the typed value there.
    assert [(c.value, m) for c, m in by_pool[tenant.pool.id].codes] == [("CODE001", "prefix")]
    assert [(c.value, m) for c, m in by_pool[second.id].codes] == [
        ("CODE-001", "code"),
        ("CODE-0010", "prefix"),
    ]
    exact = await service.search(store, account=tenant.account, query="CODE001")
    assert exact.groups[0].codes == [(exact.groups[0].codes[0][0], "code")]
    nothing = await service.search(store, account=tenant.account, query="NOPE")
    assert nothing.groups == []


async def test_search_is_bounded_per_pool(store: Store, tenant: Tenant) -> None:
    found = await service.search(store, account=tenant.account, query="CODE")  # 10 codes in the pool
    group = found.groups[0]
    assert len(group.codes) == PER_POOL and not group.more
    await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=["CODE999"])
    group = (await service.search(store, account=tenant.account, query="CODE")).groups[0]
    assert len(group.codes) == PER_POOL and group.more
    assert [c.value for c, _ in group.codes] == sorted(c.value for c, _ in group.codes)


async def test_search_by_profile_and_order(store: Store, tenant: Tenant) -> None:
    account, pool = tenant.account, tenant.pool.id
    db = await service.create_profile_database(store, account=account, name="crm")
    ann = identity(matching="profile_id", profile_id="ann-1")
    held = await service.attach_code(
        store, account=account, pool_id=pool, database_id=db.id, identity=ann, code=None
    )
    await service.redeem(store, account=account, code="CODE005", profile="ann-1", order_ref="ORD-77")
    await service.redeem(store, account=account, code="CODE006", order_ref="ORD-77")
    found = await service.search(store, account=account, query="ann-1")
    [group] = found.groups
    assert [(c.value, m) for c, m in group.codes] == [(held.value, "holder")]
    assert [(r.code, m) for r, m in group.redemptions] == [("CODE005", "profile")]
    orders = await service.search(store, account=account, query="ORD-77")
    assert sorted((r.code, m) for r, m in orders.groups[0].redemptions) == [
        ("CODE005", "order"),
        ("CODE006", "order"),
    ]


async def test_search_never_shows_another_accounts_data(store: Store, tenant: Tenant, other: Tenant) -> None:
    await service.redeem(store, account=other.account, code="RIVAL001", profile="ann-1", order_ref="ORD-1")
    for query in ("RIVAL", "RIVAL001", "ann-1", "ORD-1"):
        assert (await service.search(store, account=tenant.account, query=query)).groups == []
        theirs = await service.search(store, account=other.account, query=query)
        assert {g.pool.id for g in theirs.groups} == {other.pool.id}


async def test_search_refuses_what_no_value_holds(store: Store, tenant: Tenant) -> None:
    for query in ("a\x00b", "x" * 201):
        with pytest.raises(InvalidInput):
            await service.search(store, account=tenant.account, query=query)
    assert (await service.search(store, account=tenant.account, query="   ")).groups == []


def _plan(statement: Statement, *args: object, postgres: bool) -> Op[str]:
    if postgres:  # the planner would scan tiny tables anyway: is there an index that serves the query?
        yield Execute("SET LOCAL enable_seqscan = off")
    explain = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
    text = statement if isinstance(statement, str) else statement.postgres if postgres else statement.sqlite
    rows = yield Fetch(SQL(postgres=explain + text, sqlite=explain + text), *args)
    return "\n".join(str(row[0] if postgres else row["detail"]) for row in rows)


async def test_search_reads_indexes_never_a_scan_of_codes(store: Store, tenant: Tenant) -> None:
    postgres = store.engine == "postgresql"
    statements: list[tuple[Statement, tuple[object, ...]]] = [
        (CODES_BY_PREFIX, (tenant.account.id, "CO", "CO\U0010ffff", 11)),
        (PROFILES, (tenant.account.id, "ann-1")),
        (CODES_OF_PROFILES, (tenant.account.id, [1, 2], 500)),
        (REDEMPTIONS_OF_PROFILES, (tenant.account.id, [1, 2], 500)),
        (REDEMPTIONS_BY_ORDER, (tenant.account.id, "ORD-1", 500)),
    ]
    for statement, args in statements:
        plan = await store._driver.write(_plan(statement, *args, postgres=postgres))
        if postgres:
            assert "Seq Scan on codes" not in plan and "Seq Scan on redemptions" not in plan, plan
            lines = plan.splitlines()
            walks = [i for i, line in enumerate(lines) if "codes_pool_prefix" in line]
            assert all("lookup_key" in lines[i + 1] for i in walks), plan  # never all of a pool's codes
        else:
            # Codes and redemptions are reached by key, by profile or by a lookup-key range: never a walk
            # through a table or through all of a pool's codes.
            table = re.compile(r"(SEARCH|SCAN) (codes|redemptions|[ckr]) ")
            reads = [line for line in plan.splitlines() if table.match(line)]
            keyed = ("rowid=", "profile_id=", "lookup_key>", "order_ref=")
            assert all(any(key in line for key in keyed) for line in reads), plan
    prefix_plan = await store._driver.write(_plan(CODES_BY_PREFIX, 1, "A", "B", 3, postgres=postgres))
    assert "codes_pool_prefix" in prefix_plan, prefix_plan
