"""Redemptions on both engines: exact limits under concurrency, rollback exactly once, idempotency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from promopool import service
from promopool.domain import CodeState, PoolSettings, Redeemed
from promopool.domain.errors import (
    AlreadyRolledBack,
    CodeExpired,
    CodeUnusable,
    CodeUsedUp,
    IdempotencyKeyReused,
    InvalidInput,
    ProfileLimitReached,
    RedemptionNotFound,
)
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.helpers import attach, multi_use_pool


def outcomes(results: list[Redeemed | BaseException]) -> tuple[int, list[type[BaseException]]]:
    errors = [type(r) for r in results if isinstance(r, BaseException)]
    return len(results) - len(errors), errors


async def test_redeem_records_a_use_and_counts_it(store: Store, tenant: Tenant) -> None:
    done = await service.redeem(
        store,
        account=tenant.account,
        code="CODE000",
        profile="cust-1",
        order_ref="order-7",
        amount=Decimal("12.50"),
        metadata={"basket": ["a", "b"], "total": 2},
    )
    r = done.redemption
    assert (r.code, r.pool_id, r.profile, r.order_ref) == ("CODE000", tenant.pool.id, "cust-1", "order-7")
    assert r.amount == Decimal("12.50") and r.metadata == {"basket": ["a", "b"], "total": 2}
    assert r.rolled_back_at is None and not done.replayed
    assert done.code.usage_count == 1 and done.code.state is CodeState.REDEEMED
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued, pool.counts.redeemed) == (9, 0, 1)
    assert await service.get_redemption(store, account=tenant.account, redemption_id=r.id) == r
    with pytest.raises(CodeUnusable):  # single use: gone
        await service.redeem(store, account=tenant.account, code="CODE000")


async def test_64_concurrent_redeems_of_a_ten_use_code_succeed_exactly_ten_times(
    store: Store, tenant: Tenant
) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=10)
    results = await asyncio.gather(
        *[service.redeem(store, account=tenant.account, code="MULTI", order_ref=f"o{i}") for i in range(64)],
        return_exceptions=True,
    )
    succeeded, errors = outcomes(results)
    assert succeeded == 10
    assert errors == [CodeUnusable] * 54
    code = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 10
    listed = await service.list_redemptions(store, account=tenant.account, pool_id=pool_id, code="MULTI")
    assert len(listed) == 10
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    assert (pool.counts.available, pool.counts.redeemed) == (1, 1)


async def test_32_concurrent_redeems_by_one_profile_with_a_limit_of_one_succeed_once(
    store: Store, tenant: Tenant
) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=1000, per_profile_limit=1)
    results = await asyncio.gather(
        *[service.redeem(store, account=tenant.account, code="MULTI", profile="alice") for _ in range(32)],
        return_exceptions=True,
    )
    succeeded, errors = outcomes(results)
    assert succeeded == 1
    assert errors == [CodeUnusable] * 31  # alice does not hold the code: she learns no reason
    code = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 1
    with pytest.raises(CodeUnusable):  # the limit is per pool, not per code
        await service.redeem(store, account=tenant.account, code="OTHER", profile="alice")
    assert (
        await service.redeem(store, account=tenant.account, code="MULTI", profile="bob")
    ).code.usage_count == 2
    # redeems without a profile are not limited per profile
    assert (await service.redeem(store, account=tenant.account, code="MULTI")).code.usage_count == 3


async def test_rollback_gives_the_use_back_exactly_once(store: Store, tenant: Tenant) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=2, per_profile_limit=1)
    first = await service.redeem(store, account=tenant.account, code="MULTI", profile="alice")
    results = await asyncio.gather(
        *[
            service.rollback_redemption(store, account=tenant.account, redemption_id=first.redemption.id)
            for _ in range(8)
        ],
        return_exceptions=True,
    )
    succeeded, errors = outcomes(results)
    assert succeeded == 1 and errors == [AlreadyRolledBack] * 7
    code = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 0 and code.state is CodeState.AVAILABLE
    rolled = await service.get_redemption(store, account=tenant.account, redemption_id=first.redemption.id)
    assert rolled.rolled_back_at is not None
    # alice's use is given back too: she may redeem again
    again = await service.redeem(store, account=tenant.account, code="MULTI", profile="alice")
    assert again.code.usage_count == 1
    pool = await service.get_pool(store, account=tenant.account, pool_id=pool_id)
    assert (pool.counts.available, pool.counts.redeemed) == (1, 1)


async def test_rollback_returns_an_issued_code_to_issued(store: Store, tenant: Tenant) -> None:
    claimed = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    done = await service.redeem(store, account=tenant.account, code=claimed.code.value)
    back = await service.rollback_redemption(store, account=tenant.account, redemption_id=done.redemption.id)
    assert back.code.state is CodeState.ISSUED and back.code.usage_count == 0
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert (pool.counts.available, pool.counts.issued, pool.counts.redeemed) == (9, 1, 0)


async def test_a_code_redeemed_before_it_was_handed_out_goes_back_to_the_tail(
    store: Store, tenant: Tenant
) -> None:
    done = await service.redeem(store, account=tenant.account, code="CODE000")
    first = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    assert first.code.value == "CODE001"  # the redeemed code is not handed out
    await service.rollback_redemption(store, account=tenant.account, redemption_id=done.redemption.id)
    rest = [
        (await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)).code.value
        for _ in range(9)
    ]
    assert rest == [f"CODE{i:03d}" for i in range(2, 10)] + ["CODE000"]


async def test_idempotency_key_on_redeem_and_rollback(store: Store, tenant: Tenant) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=10)
    twins = await asyncio.gather(
        *[
            service.redeem(store, account=tenant.account, code="MULTI", idempotency_key="pay-1")
            for _ in range(8)
        ]
    )
    assert len({t.redemption.id for t in twins}) == 1 and sum(not t.replayed for t in twins) == 1
    code = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 1
    with pytest.raises(IdempotencyKeyReused):
        await service.redeem(store, account=tenant.account, code="OTHER", idempotency_key="pay-1")
    redemption_id = twins[0].redemption.id
    undo = [
        await service.rollback_redemption(
            store, account=tenant.account, redemption_id=redemption_id, idempotency_key="undo-1"
        )
        for _ in range(2)
    ]
    assert [u.replayed for u in undo] == [False, True]
    assert undo[1].redemption.rolled_back_at == undo[0].redemption.rolled_back_at
    with pytest.raises(AlreadyRolledBack):  # without the key, a second rollback is refused
        await service.rollback_redemption(store, account=tenant.account, redemption_id=redemption_id)
    with pytest.raises(IdempotencyKeyReused):
        await service.rollback_redemption(
            store, account=tenant.account, redemption_id=redemption_id, idempotency_key="pay-1"
        )
    code = await service.get_code(store, account=tenant.account, pool_id=pool_id, value="MULTI")
    assert code.usage_count == 0


async def test_a_refused_redeem_does_not_keep_its_idempotency_key(store: Store, tenant: Tenant) -> None:
    await service.redeem(store, account=tenant.account, code="CODE000")
    with pytest.raises(CodeUnusable):
        await service.redeem(store, account=tenant.account, code="CODE000", idempotency_key="k")
    assert not (
        await service.redeem(store, account=tenant.account, code="CODE001", idempotency_key="k")
    ).replayed


async def test_validate_answers_like_redeem_without_using(store: Store, tenant: Tenant) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=3, per_profile_limit=2)
    use = await service.validate_code(store, account=tenant.account, code="MULTI", profile="new-face")
    assert (use.uses_left, use.profile_uses_left, use.pool.id) == (3, 2, pool_id)
    await service.redeem(store, account=tenant.account, code="MULTI", profile="carol")
    use = await service.validate_code(store, account=tenant.account, code="MULTI", profile="carol")
    assert (use.uses_left, use.profile_uses_left, use.code.usage_count) == (2, 1, 1)
    for value in ("NOPE", "", "x" * 500, "bad\x00"):
        with pytest.raises(CodeUnusable):
            await service.validate_code(store, account=tenant.account, code=value)


async def test_expiry_is_refused_and_told_only_to_the_holder(store: Store, tenant: Tenant) -> None:
    past = store.clock() - timedelta(seconds=1)
    pool_id = await multi_use_pool(store, tenant.account, max_uses=5, holder_only=True)
    await attach(store, tenant.account, pool_id, "MULTI", "dave")
    assert (await service.validate_code(store, account=tenant.account, code="MULTI", profile="dave")).holder
    await service.update_pool(store, account=tenant.account, pool_id=pool_id, expires_at=past)
    for call in (service.validate_code, service.redeem):
        with pytest.raises(CodeExpired):
            await call(store, account=tenant.account, code="MULTI", profile="dave")
        with pytest.raises(CodeUnusable):
            await call(store, account=tenant.account, code="MULTI", profile="erin")
        with pytest.raises(CodeUnusable):
            await call(store, account=tenant.account, code="MULTI")


async def test_holder_only_pool_refuses_everyone_but_the_holder(store: Store, tenant: Tenant) -> None:
    pool_id = await multi_use_pool(store, tenant.account, max_uses=2, per_profile_limit=1, holder_only=True)
    await attach(store, tenant.account, pool_id, "MULTI", "dave")
    with pytest.raises(CodeUnusable):
        await service.redeem(store, account=tenant.account, code="MULTI", profile="erin")
    with pytest.raises(CodeUnusable):
        await service.redeem(store, account=tenant.account, code="MULTI")
    assert (
        await service.redeem(store, account=tenant.account, code="OTHER", profile="erin")
    ).code.usage_count == 1
    await service.redeem(store, account=tenant.account, code="MULTI", profile="dave")
    with pytest.raises(ProfileLimitReached):  # the holder learns why
        await service.redeem(store, account=tenant.account, code="MULTI", profile="dave")
    await service.update_pool(store, account=tenant.account, pool_id=pool_id, per_profile_limit=None)
    await service.redeem(store, account=tenant.account, code="MULTI", profile="dave")
    with pytest.raises(CodeUsedUp):
        await service.redeem(store, account=tenant.account, code="MULTI", profile="dave")
    # switched off, an attached code is anyone's
    await service.update_pool(store, account=tenant.account, pool_id=pool_id, holder_only=False, max_uses=3)
    assert (
        await service.redeem(store, account=tenant.account, code="MULTI", profile="erin")
    ).code.usage_count == 3


async def test_another_account_sees_nothing(store: Store, tenant: Tenant, other: Tenant) -> None:
    done = await service.redeem(store, account=tenant.account, code="CODE001")
    with pytest.raises(CodeUnusable):
        await service.redeem(store, account=other.account, code="CODE002")
    with pytest.raises(CodeUnusable):
        await service.validate_code(store, account=other.account, code="CODE002", pool_id=tenant.pool.id)
    with pytest.raises(RedemptionNotFound):
        await service.rollback_redemption(store, account=other.account, redemption_id=done.redemption.id)
    with pytest.raises(RedemptionNotFound):
        await service.get_redemption(store, account=other.account, redemption_id=done.redemption.id)
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE001")
    assert code.usage_count == 1


async def test_a_value_in_several_pools_means_the_oldest_pool_unless_named(
    store: Store, tenant: Tenant
) -> None:
    second = await service.create_pool(store, account=tenant.account, name="second", settings=PoolSettings())
    await service.import_codes(store, account=tenant.account, pool_id=second.id, values=["CODE003"])
    assert (
        await service.redeem(store, account=tenant.account, code="CODE003")
    ).redemption.pool_id == tenant.pool.id
    named = await service.redeem(store, account=tenant.account, code="CODE003", pool_id=second.id)
    assert named.redemption.pool_id == second.id


async def test_bad_redeem_input_is_refused_before_anything_happens(store: Store, tenant: Tenant) -> None:
    for kwargs in (
        {"profile": ""},
        {"profile": "p\x00"},
        {"order_ref": "x" * 256},
        {"amount": Decimal("NaN")},
        {"amount": Decimal("1E+400")},
        {"metadata": {"k": "v\x00"}},
        {"idempotency_key": ""},
    ):
        with pytest.raises(InvalidInput):
            await service.redeem(store, account=tenant.account, code="CODE000", **kwargs)  # type: ignore[arg-type]
    code = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE000")
    assert code.usage_count == 0


async def test_tenants_with_the_same_profile_key_are_separate(store: Store) -> None:
    a = await make_tenant(store, "a")
    b = await make_tenant(store, "b")
    pool_a = await multi_use_pool(store, a.account, max_uses=5, per_profile_limit=1)
    pool_b = await multi_use_pool(store, b.account, max_uses=5, per_profile_limit=1)
    await service.redeem(store, account=a.account, code="MULTI", pool_id=pool_a, profile="same")
    done = await service.redeem(store, account=b.account, code="MULTI", pool_id=pool_b, profile="same")
    assert done.redemption.profile == "same"
