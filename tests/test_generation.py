"""Code generation: the shapes, the key-space floor at its boundary, uniqueness in the database, and jobs
whose progress is exactly what they stored — on both engines."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import pytest

from promopool import service
from promopool.domain import CodeState, PoolSettings
from promopool.domain.errors import Conflict, InvalidInput, JobNotFound, KeySpaceTooSmall
from promopool.domain.generation import CHARSETS, CodeSpec, check_key_space, generate, random_characters
from promopool.domain.jobs import JobState
from promopool.service.generation import STOPPED
from promopool.storage import Store
from tests.conftest import Tenant


async def stored_values(store: Store, tenant: Tenant, pool_id: int) -> list[str]:
    batches = await service.export_codes(store, account=tenant.account, pool_id=pool_id)
    return [row.code async for rows in batches for row in rows]


# -- the shape of a code ------------------------------------------------------------------------------------
def test_pattern_prefix_suffix_and_check_character() -> None:
    spec = CodeSpec.of(pattern="SALE-####-####", prefix="X", suffix="-EU", check_character=True)
    codes = generate(spec, 2000)
    pattern = re.compile(
        r"XSALE-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{4}-[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{5}-EU"
    )
    assert all(pattern.fullmatch(code) for code in codes)
    assert all(spec.matches(code) for code in codes)
    typo = list(codes[0])
    typo[6] = "2" if typo[6] != "2" else "3"  # the first random character, mistyped
    assert not spec.matches("".join(typo))
    assert spec.key_space == 31**8


@pytest.mark.parametrize("charset", list(CHARSETS))
def test_length_and_charsets_uppercase_by_default(charset: str) -> None:
    upper, lower = (
        CodeSpec.of(length=10, charset=charset),
        CodeSpec.of(length=10, charset=charset, uppercase=False),
    )
    assert all(len(c) == 10 and set(c) <= set(CHARSETS[charset]) for c in generate(upper, 500))
    assert all(set(c) <= set(CHARSETS[charset].lower()) for c in generate(lower, 500))
    assert CodeSpec.of().key_space == 31**12  # the default: 12 unambiguous characters


def test_unambiguous_set_has_no_lookalikes() -> None:
    assert not set("0O1IL") & set(CHARSETS["unambiguous"])


def test_random_characters_are_roughly_uniform() -> None:
    # Rejection sampling keeps every character equally likely (26 does not divide 256).
    drawn = random_characters(CHARSETS["letters"], 260_000)
    counts = [drawn.count(char) for char in CHARSETS["letters"]]
    assert min(counts) > 9_400 and max(counts) < 10_600  # expected 10,000 each; 6 sigma is ±590


def test_non_ascii_literals_keep_their_place() -> None:
    spec = CodeSpec.of(pattern="ÉTÉ-###", suffix="€", check_character=True)
    assert all(re.fullmatch(r"ÉTÉ-\w{4}€", code) and spec.matches(code) for code in generate(spec, 100))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"pattern": "ABC"}, "pattern"),
        ({"pattern": "##", "length": 2}, "pattern"),
        ({"length": 0}, "length"),
        ({"length": 129}, "length"),
        ({"pattern": "#" * 128, "check_character": True}, "pattern"),
        ({"charset": "emoji"}, "charset"),
        ({"prefix": "a\x00"}, "prefix"),
        ({"prefix": " X"}, "prefix"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        CodeSpec.of(**kwargs)  # type: ignore[arg-type]
    assert raised.value.details["field"] == field


# -- the key-space floor ---------------------------------------------------------------------------------
def test_key_space_floor_boundary() -> None:
    # 8 digits: 100,000,000 codes; a fill of 1e-6 allows 100 in all. With 10 stored, 90 fit, 91 do not.
    spec = CodeSpec.of(pattern="########", charset="digits")
    check_key_space(spec, existing=10, count=90, max_fill=1e-6)
    with pytest.raises(KeySpaceTooSmall) as raised:
        check_key_space(spec, existing=10, count=91, max_fill=1e-6)
    message = raised.value.message
    for number in ("91", "101", "100,000,000", "1e-06", "10", "at most 90 more"):
        assert number in message, message
    assert raised.value.details == {
        "field": "count",
        "count": 91,
        "existing": 10,
        "key_space": 100_000_000,
        "max_fill": 1e-6,
        "max_count": 90,
    }


async def test_floor_counts_the_codes_the_pool_holds(store: Store, tenant: Tenant) -> None:
    spec = CodeSpec.of(pattern="########", charset="digits")  # the tenant's pool holds 10 codes
    with pytest.raises(KeySpaceTooSmall, match="at most 90 more"):
        await service.generate_codes(
            store, account=tenant.account, pool_id=tenant.pool.id, spec=spec, count=91
        )
    job = await service.generate_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=spec, count=90
    )
    assert (job.state, job.done) == (JobState.SUCCEEDED, 90)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 100
    with pytest.raises(KeySpaceTooSmall, match="at most 0 more"):
        await service.generate_codes(
            store, account=tenant.account, pool_id=tenant.pool.id, spec=spec, count=1
        )


# -- storing them ----------------------------------------------------------------------------------------
async def test_generated_codes_are_stored_unique_and_match(store: Store, tenant: Tenant) -> None:
    spec = CodeSpec.of(pattern="GIFT-####-####", check_character=True)
    job = await service.generate_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=spec, count=30_000
    )
    assert (job.state, job.done, job.total, job.error) == (JobState.SUCCEEDED, 30_000, 30_000, None)
    values = await stored_values(store, tenant, tenant.pool.id)
    generated = [v for v in values if v.startswith("GIFT-")]
    assert len(generated) == len(set(generated)) == 30_000  # the database holds them once each
    assert all(spec.matches(v) for v in generated)
    pool = await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    assert pool.counts.available == 30_010
    claimed = await service.claim(store, account=tenant.account, pool_id=tenant.pool.id)
    assert claimed.code.value == "CODE000"  # generated codes queue behind the imported ones


async def test_collisions_are_regenerated_until_the_count_is_reached(store: Store, tenant: Tenant) -> None:
    # 3 digits: 1,000 possible codes. Asking for 500 at a 50% fill collides often; only the shortfall of
    # each batch is generated again, and the pool ends with exactly 500 distinct codes.
    pool = await service.create_pool(store, account=tenant.account, name="tiny", settings=PoolSettings())
    spec = CodeSpec.of(length=3, charset="digits")
    job = await service.generate_codes(
        store, account=tenant.account, pool_id=pool.id, spec=spec, count=500, max_fill=0.5
    )
    assert (job.state, job.done) == (JobState.SUCCEEDED, 500)
    values = await stored_values(store, tenant, pool.id)
    assert len(values) == len(set(values)) == 500


async def test_progress_is_reported_per_batch(store: Store, tenant: Tenant) -> None:
    seen: list[int] = []
    job = await service.start_generation(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=2_500
    )
    done = await service.run_generation(store, job=job, batch_size=1_000, on_progress=seen.append)
    assert seen == [1_000, 2_000, 2_500] and done.done == 2_500
    assert (await service.get_job(store, account=tenant.account, job_id=job.id)).done == 2_500


async def test_one_running_job_per_pool(store: Store, tenant: Tenant) -> None:
    first = await service.start_generation(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=10
    )
    with pytest.raises(Conflict, match="already running"):
        await service.start_generation(
            store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=10
        )
    await service.run_generation(store, job=first)
    again = await service.start_generation(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=10
    )
    assert again.id != first.id


async def test_jobs_belong_to_their_account(store: Store, tenant: Tenant, other: Tenant) -> None:
    job = await service.generate_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=5
    )
    with pytest.raises(JobNotFound):
        await service.get_job(store, account=other.account, job_id=job.id)


# -- stopping mid-way ------------------------------------------------------------------------------------
async def test_a_stopped_job_counts_exactly_what_it_stored(store: Store, tenant: Tenant) -> None:
    pool = await service.create_pool(store, account=tenant.account, name="stop", settings=PoolSettings())
    job = await service.start_generation(
        store, account=tenant.account, pool_id=pool.id, spec=CodeSpec.of(), count=1_000_000
    )
    three_batches = asyncio.Event()

    def on_progress(done: int) -> None:
        if done >= 6_000:
            three_batches.set()

    task = asyncio.create_task(
        service.run_generation(store, job=job, batch_size=2_000, on_progress=on_progress)
    )
    await three_batches.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = await service.get_job(store, account=tenant.account, job_id=job.id)
    assert stopped.state is JobState.FAILED and stopped.error == STOPPED
    stored = len(await stored_values(store, tenant, pool.id))
    assert stopped.done == stored and stored % 2_000 == 0 and stored >= 6_000
    assert (await service.get_pool(store, account=tenant.account, pool_id=pool.id)).counts.available == stored


async def test_jobs_of_a_stopped_server_are_failed_by_the_sweep(store: Store, tenant: Tenant) -> None:
    job = await service.start_generation(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=100
    )
    assert await service.fail_stale_jobs(store) == 0  # its heartbeat is fresh
    real_clock = store.clock
    store.clock = lambda: real_clock() + timedelta(minutes=5)
    try:
        assert await service.fail_stale_jobs(store) == 1
    finally:
        store.clock = real_clock
    failed = await service.get_job(store, account=tenant.account, job_id=job.id)
    assert failed.state is JobState.FAILED and failed.done == 0 and "server stopped" in (failed.error or "")
    # A batch that arrives after the job was failed stores nothing and counts nothing.
    with pytest.raises(Conflict, match="no longer running"):
        await store.insert_job_codes(job_id=job.id, pool_id=tenant.pool.id, values=["LATE1", "LATE2"])
    assert (
        await service.get_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    ).counts.available == 10
    finished = await service.run_generation(store, job=job)  # a runner that wakes up late changes nothing
    assert finished.state is JobState.FAILED and finished.done == 0


async def test_deleting_the_pool_fails_its_job(store: Store, tenant: Tenant) -> None:
    job = await service.start_generation(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=CodeSpec.of(), count=100
    )
    await service.delete_pool(store, account=tenant.account, pool_id=tenant.pool.id)
    finished = await service.run_generation(store, job=job)
    assert finished.state is JobState.FAILED and finished.pool_id is None
    assert finished.error is not None and "not found" in finished.error


async def test_generated_codes_claim_in_generated_order_not_sorted(store: Store, tenant: Tenant) -> None:
    # Rows are inserted in value order for the index's sake; the claim order stays the generated order.
    pool = await service.create_pool(store, account=tenant.account, name="order", settings=PoolSettings())
    await service.import_codes(
        store, account=tenant.account, pool_id=pool.id, values=["M", "Z", "A", "M", "B"]
    )
    got = [(await service.claim(store, account=tenant.account, pool_id=pool.id)).code.value for _ in range(4)]
    assert got == ["M", "Z", "A", "B"]
    issued = await service.list_codes(store, account=tenant.account, pool_id=pool.id, state=CodeState.ISSUED)
    assert len(issued) == 4
