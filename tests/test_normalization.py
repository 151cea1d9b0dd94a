"""Code normalization per pool, on both engines: typed values find stored codes, settings can change later,
collisions are reported; plus the rules themselves."""

from __future__ import annotations

import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import AlreadyExists, CodeUnusable, NormalizationCollision
from promopool.domain.normalization import Normalization, best_match, collisions, lookup_key, new_values
from promopool.storage import Store
from tests.conftest import Tenant


async def pool_with(store: Store, tenant: Tenant, values: list[str], **settings: bool) -> int:
    pool = await service.create_pool(
        store, account=tenant.account, name="typed", settings=PoolSettings(max_uses=5, **settings)
    )
    await service.import_codes(store, account=tenant.account, pool_id=pool.id, values=values)
    return pool.id


async def test_typed_value_finds_the_stored_code_when_on(store: Store, tenant: Tenant) -> None:
    pool_id = await pool_with(store, tenant, ["ab12CD"], case_insensitive=True, ignore_separators=True)
    use = await service.validate_code(store, account=tenant.account, code="AB-12 cd")
    assert use.code.value == "ab12CD" and use.pool.id == pool_id
    done = await service.redeem(store, account=tenant.account, code=" ab-12-cd ")
    assert done.redemption.code == "ab12CD"  # the display form is kept


async def test_each_setting_alone(store: Store, tenant: Tenant) -> None:
    await pool_with(store, tenant, ["ab12CD"], case_insensitive=True)
    assert (await service.validate_code(store, account=tenant.account, code="AB12cd")).code.value == "ab12CD"
    with pytest.raises(CodeUnusable):
        await service.validate_code(store, account=tenant.account, code="AB-12cd")
    other = await service.create_pool(
        store, account=tenant.account, name="dashes", settings=PoolSettings(ignore_separators=True)
    )
    await service.import_codes(store, account=tenant.account, pool_id=other.id, values=["XY-99"])
    assert (await service.validate_code(store, account=tenant.account, code="X Y99")).code.value == "XY-99"
    with pytest.raises(CodeUnusable):
        await service.validate_code(store, account=tenant.account, code="xy99")


async def test_off_by_default_means_exact(store: Store, tenant: Tenant) -> None:
    await pool_with(store, tenant, ["ab12CD"])
    for typed in ("AB12CD", "ab12cd", "ab-12CD"):
        with pytest.raises(CodeUnusable):
            await service.validate_code(store, account=tenant.account, code=typed)
    assert (await service.validate_code(store, account=tenant.account, code="ab12CD")).code.value == "ab12CD"


async def test_switching_on_later_keeps_old_codes_reachable(store: Store, tenant: Tenant) -> None:
    pool_id = await pool_with(store, tenant, ["Summer-Sale", "winter 10"])
    await service.update_pool(
        store, account=tenant.account, pool_id=pool_id, case_insensitive=True, ignore_separators=True
    )
    assert (await service.validate_code(store, account=tenant.account, code="SUMMERSALE")).code.value == (
        "Summer-Sale"
    )
    assert (
        await service.validate_code(store, account=tenant.account, code="Winter10")
    ).code.value == "winter 10"
    assert (await service.validate_code(store, account=tenant.account, code="Summer-Sale")).code.value == (
        "Summer-Sale"
    )
    await service.update_pool(store, account=tenant.account, pool_id=pool_id, case_insensitive=False)
    with pytest.raises(CodeUnusable):
        await service.validate_code(store, account=tenant.account, code="SUMMERSALE")
    assert (await service.validate_code(store, account=tenant.account, code="Summer Sale")).code.value == (
        "Summer-Sale"
    )


async def test_a_collision_created_by_switching_on_is_reported_not_merged(
    store: Store, tenant: Tenant
) -> None:
    pool_id = await pool_with(store, tenant, ["AB-12", "ab12", "AB 12", "XY1", "xy1", "alone"])
    with pytest.raises(NormalizationCollision) as raised:
        await service.update_pool(store, account=tenant.account, pool_id=pool_id, case_insensitive=True)
    assert raised.value.details == {"count": 1, "collisions": [["XY1", "xy1"]]}
    with pytest.raises(NormalizationCollision) as raised:
        await service.update_pool(
            store, account=tenant.account, pool_id=pool_id, case_insensitive=True, ignore_separators=True
        )
    assert raised.value.details == {"count": 2, "collisions": [["AB 12", "AB-12", "ab12"], ["XY1", "xy1"]]}
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    assert not pool.settings.case_insensitive and not pool.settings.ignore_separators  # nothing changed
    assert pool.counts.available == 6
    # every code is still its own
    for value in ("AB-12", "ab12", "AB 12", "XY1", "xy1"):
        assert (await service.validate_code(store, account=tenant.account, code=value)).code.value == value
    # once the duplicates are gone the setting goes through
    for value in ("ab12", "AB 12", "xy1"):
        await service.delete_code(store, account=tenant.account, pool_id=pool_id, value=value)
    await service.update_pool(
        store, account=tenant.account, pool_id=pool_id, case_insensitive=True, ignore_separators=True
    )


async def test_import_skips_values_equal_under_the_pools_settings(store: Store, tenant: Tenant) -> None:
    pool_id = await pool_with(store, tenant, ["AB-12"], case_insensitive=True, ignore_separators=True)
    report = await service.import_codes(
        store,
        account=tenant.account,
        pool_id=pool_id,
        values=["ab12", "CD 34", "cd-34", "EF56", "AB-12"],
        batch_size=2,
    )
    assert (report.inserted, report.duplicates) == (2, 3)
    codes = await service.list_codes(store, account=tenant.account, pool_id=pool_id)
    assert sorted(c.value for c in codes) == ["AB-12", "CD 34", "EF56"]
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    assert pool.counts.available == 3


async def test_only_ascii_letters_fold_on_both_engines(store: Store, tenant: Tenant) -> None:
    await pool_with(store, tenant, ["çé-1"], case_insensitive=True, ignore_separators=True)
    assert (await service.validate_code(store, account=tenant.account, code="çé1")).code.value == "çé-1"
    with pytest.raises(CodeUnusable):
        await service.validate_code(store, account=tenant.account, code="ÇÉ1")


def test_lookup_key_is_the_coarsest_form() -> None:
    assert lookup_key("ab-12 Cd") == "AB12CD"
    assert lookup_key("é-é") == "éé"
    for settings in (
        Normalization(),
        Normalization(True),
        Normalization(False, True),
        Normalization(True, True),
    ):
        for a, b in (("ab-12", "AB12"), ("x y", "X-Y"), ("Q", "q")):
            if settings.matches(a, b):
                assert lookup_key(a) == lookup_key(b)


def test_rules_for_collisions_new_values_and_matches() -> None:
    both = Normalization(True, True)
    assert collisions(["a-1", "A1", "b", "B 2"], both) == [["A1", "a-1"]]
    assert new_values(["x1", "X-1", "y"], ["Y"], both) == [(0, "x1")]
    assert new_values(["x1", "X-1", "y"], ["Y"], Normalization()) == [(0, "x1"), (1, "X-1"), (2, "y")]
    assert both.folds_more_than(Normalization(True)) and not Normalization(True).folds_more_than(both)
    exact, loose = Normalization(), both
    candidates = [
        ("in-pool-2", "AB12", loose, 2),
        ("in-pool-3", "ab12", exact, 3),
        ("in-pool-1", "ab-12", loose, 1),
    ]
    assert best_match("ab12", candidates) == "in-pool-3"  # the exact value first
    assert best_match("Ab12", candidates) == "in-pool-1"  # then the oldest pool
    assert best_match("zz", candidates) is None


async def test_a_duplicated_promotion_respects_the_pools_normalization(store: Store, tenant: Tenant) -> None:
    pool_id = await pool_with(
        store, tenant, ["ab12CD", "TEMPLATE"], case_insensitive=True, ignore_separators=True
    )
    with pytest.raises(AlreadyExists):
        await service.duplicate_promotion(
            store, account=tenant.account, template_code="TEMPLATE", new_code="AB-12 cd"
        )
    created = await service.duplicate_promotion(
        store, account=tenant.account, template_code="TEMPLATE", new_code="AB-13"
    )
    assert created.pool_id == pool_id
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    assert pool.counts.available == 3
