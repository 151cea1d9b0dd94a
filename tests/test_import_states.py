"""Importing what an export wrote: every code keeps its state, issued time, holder and uses, so export →
import → export round-trips exactly and nothing handed out becomes claimable again — through the CLI, the
HTTP import and the service, on both engines."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from promopool import service
from promopool.cli import app
from promopool.domain import Account, CodeState, PoolSettings
from promopool.domain.errors import PoolExhausted
from promopool.domain.export import StateFields
from promopool.domain.profiles import identity
from promopool.formats.lines import aiter_csv_codes
from promopool.storage import Store
from tests.conftest import Tenant, connected
from tests.helpers import assert_error

Client = httpx.AsyncClient
HEADER = "code,state,issued_at,profile,usage_count\n"

# One code of every kind the system makes: claimed, attached to a holder, redeemed after a claim, redeemed
# without one (no issued_at), and available, one of them needing CSV quotes.
STATES_CSV = HEADER + (
    '"A,""B",available,,,0\n'
    "AVAIL-1,available,,,0\n"
    "HELD-1,issued,2026-03-01T10:00:00.123456Z,cust-7,0\n"
    "ISSUED-1,issued,2026-03-01T09:00:00.000001Z,,0\n"
    "REDEEMED-1,redeemed,2026-02-01T08:00:00.500000Z,cust-7,2\n"
    "REDEEMED-2,redeemed,,,1\n"
)


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def state_counts(store: Store, account: Account, pool_id: int) -> dict[str, int]:
    """How many codes of each state the pool's rows hold (counted row by row, not from its counters)."""
    codes = await service.list_codes(store, account=account, pool_id=pool_id, limit=1000)
    return {state: sum(1 for c in codes if c.state == state) for state in CodeState}


async def assert_counters_match_rows(store: Store, account: Account, pool_id: int) -> None:
    counts = (await service.get_pool(store, account=account, pool_id=pool_id)).counts
    assert {"available": counts.available, "issued": counts.issued, "redeemed": counts.redeemed} == (
        await state_counts(store, account, pool_id)
    )


async def claim_all(store: Store, account: Account, pool_id: int) -> list[str]:
    claimed = []
    while True:
        try:
            claimed.append((await service.claim(store, account=account, pool_id=pool_id)).code.value)
        except PoolExhausted:
            return claimed


def test_cli_export_import_export_round_trips(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--database-url", database_url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    async def source() -> int:
        async with connected(database_url) as store:
            owner = (await service.create_account(store, name="default")).account
            pool = await service.create_pool(
                store, account=owner, name="src", settings=PoolSettings(max_uses=3)
            )
            values = [f"RT-{i:02d}" for i in range(8)] + ['A,"B']
            await service.import_codes(store, account=owner, pool_id=pool.id, values=values)
            await service.claim(store, account=owner, pool_id=pool.id)  # RT-00
            await service.claim(store, account=owner, pool_id=pool.id)  # RT-01
            base = await service.create_profile_database(store, account=owner, name="crm")
            who = identity(matching="profile_id", profile_id="cust-7")
            await service.attach_code(
                store, account=owner, pool_id=pool.id, database_id=base.id, identity=who, code="RT-05"
            )
            for _ in range(2):  # a claimed code used twice
                await service.redeem(store, account=owner, code="RT-01", profile="buyer")
            await service.redeem(store, account=owner, code="RT-06")  # used without a claim
            return pool.id

    source_id = asyncio.run(source())
    exported = tmp_path / "pool.csv"
    run("export", str(source_id), "-o", str(exported))
    text = exported.read_text()
    assert {row["state"] for row in rows_of(text)} == {"available", "issued", "redeemed"}
    assert "RT-05,issued," in text and ",cust-7,0" in text

    run("accounts", "create", "elsewhere")
    target_id = run("pools", "create", "copy", "--account", "elsewhere").strip()
    assert "inserted 9, duplicates 0, invalid 0" in run(
        "import", target_id, str(exported), "--account", "elsewhere"
    )
    assert run("export", target_id, "--account", "elsewhere") == text

    async def target() -> None:
        async with connected(database_url) as store:
            owner = await store.account_by_name("elsewhere")
            assert owner is not None
            pool_id = int(target_id)
            await assert_counters_match_rows(store, owner, pool_id)
            counts = (await service.get_pool(store, account=owner, pool_id=pool_id)).counts
            assert (counts.available, counts.issued, counts.redeemed) == (5, 2, 2)
            # The holder is the destination account's profile of that id, as a redeem naming it finds it.
            redeemed = await service.redeem(store, account=owner, code="RT-02", profile="cust-7")
            held = await service.get_code(store, account=owner, pool_id=pool_id, value="RT-05")
            assert held.profile_id is not None and held.profile_id == redeemed.redemption.profile_id
            # Only what was available in the source is handed out.
            assert sorted(await claim_all(store, owner, pool_id)) == ['A,"B', "RT-03", "RT-04", "RT-07"]

    asyncio.run(target())


async def test_http_import_of_a_csv_with_states(client: Client, store: Store, tenant: Tenant) -> None:
    h = tenant.headers
    # A profile the account knows already (made by a redeem) is found again, not made twice.
    known = await service.redeem(store, account=tenant.account, code="CODE000", profile="cust-7")
    fresh = (await client.post("/v1/pools", json={"name": "restored", "max_uses": 5}, headers=h)).json()
    url = f"/v1/pools/{fresh['id']}"
    r = await client.post(f"{url}/codes", content=STATES_CSV, headers={**h, "content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json() == {"inserted": 6, "duplicates": 0, "invalid": 0, "invalid_samples": []}
    assert (await client.get(f"{url}/export", headers=h)).text == STATES_CSV
    counts = (await client.get(url, headers=h)).json()["counts"]
    assert (counts["available"], counts["issued"], counts["redeemed"]) == (2, 2, 2)
    await assert_counters_match_rows(store, tenant.account, fresh["id"])
    held = await service.get_code(store, account=tenant.account, pool_id=fresh["id"], value="HELD-1")
    assert held.profile_id == known.redemption.profile_id

    claimed = [(await client.post(f"{url}/claim", headers=h)).json()["code"] for _ in range(2)]
    assert sorted(claimed) == ['A,"B', "AVAIL-1"]
    assert_error(await client.post(f"{url}/claim", headers=h), 409, "pool_exhausted")
    await assert_counters_match_rows(store, tenant.account, fresh["id"])


async def test_an_issued_code_without_a_time_is_issued_at_the_import(store: Store, tenant: Tenant) -> None:
    fresh = await service.create_pool(store, account=tenant.account, name="p", settings=PoolSettings())
    rows = [
        StateFields(line=2, code="LATE", state="issued"),
        StateFields(line=3, code="FREE", state="available"),
    ]
    before = store.clock()
    report = await service.import_codes(store, account=tenant.account, pool_id=fresh.id, values=rows)
    assert report.inserted == 2
    late = await service.get_code(store, account=tenant.account, pool_id=fresh.id, value="LATE")
    assert late.state == "issued" and late.issued_at is not None and late.issued_at >= before
    assert await claim_all(store, tenant.account, fresh.id) == ["FREE"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("BAD-1,lost,,,0", "unknown_state"),
        ("BAD-1,,,,0", "unknown_state"),
        ("BAD-1,issued,yesterday,,0", "invalid_issued_at"),
        ("BAD-1,issued,2026-03-01T10:00:00,,0", "invalid_issued_at"),  # no time zone
        ("BAD-1,available,2026-03-01T10:00:00Z,,0", "invalid_issued_at"),
        ("BAD-1,redeemed,,,-1", "invalid_usage_count"),
        ("BAD-1,redeemed,,,1.5", "invalid_usage_count"),
        ("BAD-1,redeemed,,,0", "invalid_usage_count"),
        ("BAD-1,issued,2026-03-01T10:00:00Z,,3", "invalid_usage_count"),
        ("BAD-1,issued,2026-03-01T10:00:00Z," + "p" * 256 + ",0", "invalid_profile"),
    ],
)
async def test_a_bad_row_refuses_the_whole_upload(
    client: Client, store: Store, tenant: Tenant, row: str, reason: str
) -> None:
    h = {**tenant.headers, "content-type": "text/csv"}
    url = f"/v1/pools/{tenant.pool.id}"
    before = await state_counts(store, tenant.account, tenant.pool.id)
    body = HEADER + "NEW-1,issued,2026-03-01T10:00:00Z,,0\n" + row + "\nNEW-2,available,,,0\n"
    r = await client.post(f"{url}/codes", content=body, headers=h)
    assert_error(r, 400, "invalid_code")
    assert r.json()["error"]["details"]["samples"] == [{"position": 3, "reason": reason}]
    assert "line 3" in r.json()["error"]["message"]
    assert await state_counts(store, tenant.account, tenant.pool.id) == before
    await assert_counters_match_rows(store, tenant.account, tenant.pool.id)
    assert_error(await client.get(f"{url}/codes/NEW-1", headers=tenant.headers), 404, "code_not_found")

    # Skipping invalid rows skips that one, as an invalid code is skipped: it is never stored as available.
    r = await client.post(f"{url}/codes?skip_invalid=true", content=body, headers=h)
    assert r.json()["inserted"] == 2 and r.json()["invalid_samples"] == [{"position": 3, "reason": reason}]
    assert_error(await client.get(f"{url}/codes/BAD-1", headers=tenant.headers), 404, "code_not_found")
    await assert_counters_match_rows(store, tenant.account, tenant.pool.id)


def test_cli_strict_refuses_a_bad_state_naming_its_line(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--database-url", database_url]
    assert runner.invoke(app, [*base, "accounts", "create", "default"]).exit_code == 0
    pool_id = runner.invoke(app, [*base, "pools", "create", "p"]).output.strip()

    def counts() -> tuple[int, int, int]:
        async def read() -> tuple[int, int, int]:
            async with connected(database_url) as store:
                owner = await store.account_by_name("default")
                assert owner is not None
                await assert_counters_match_rows(store, owner, int(pool_id))
                c = (await service.get_pool(store, account=owner, pool_id=int(pool_id))).counts
                return c.available, c.issued, c.redeemed

        return asyncio.run(read())

    sheet = tmp_path / "pool.csv"
    sheet.write_text(HEADER + "A,issued,2026-03-01T10:00:00Z,,0\n\nB,given,,,0\n")
    refused = runner.invoke(app, [*base, "import", pool_id, str(sheet), "--strict"])
    assert refused.exit_code == 1 and "invalid_code" in refused.output
    assert "the first at line 4 (unknown state)" in " ".join(refused.output.split())
    assert counts() == (0, 0, 0)
    lenient = runner.invoke(app, [*base, "import", pool_id, str(sheet)])
    assert (
        "inserted 1, duplicates 0, invalid 1" in lenient.output and "line 4: unknown state" in lenient.output
    )
    assert counts() == (0, 1, 0)


async def test_duplicates_keep_the_stored_code_as_it_is(store: Store, tenant: Tenant) -> None:
    # CODE000 is stored available; a file that says it was issued does not change it (a duplicate is
    # skipped), and the new code of the same file is imported with its state, across small batches.
    lines = aiter_csv_codes(
        _aiter([HEADER.strip(), "CODE000,issued,2026-03-01T10:00:00Z,,0", "NEW,redeemed,,,1"])
    )
    report = await service.import_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, values=lines, strict=True, batch_size=1
    )
    assert (report.inserted, report.duplicates) == (1, 1)
    kept = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="CODE000")
    assert kept.state == "available" and kept.issued_at is None
    new = await service.get_code(store, account=tenant.account, pool_id=tenant.pool.id, value="NEW")
    assert (new.state, new.usage_count) == ("redeemed", 1)
    await assert_counters_match_rows(store, tenant.account, tenant.pool.id)


async def test_plain_code_lists_import_as_before(client: Client, store: Store, tenant: Tenant) -> None:
    h = {**tenant.headers, "content-type": "text/csv"}
    url = f"/v1/pools/{tenant.pool.id}/codes"
    r = await client.post(url, content="code,description\nP1,spring\nP2,summer\n", headers=h)
    assert r.json()["inserted"] == 2
    r = await client.post(url, content="P3\nP4,whatever\n", headers=h)
    assert r.json()["inserted"] == 2
    # Positions are line numbers, the header's line counted; a byte order mark is no part of the header.
    for body in ("code\nP5\n\nbad\x01\n", "\ufeffcode\nP5\n\nbad\x01\n"):
        r = await client.post(url, content=body.encode(), headers=h)
        assert_error(r, 400, "invalid_code")
        assert r.json()["error"]["details"]["samples"] == [{"position": 4, "reason": "control_character"}]
    assert (await state_counts(store, tenant.account, tenant.pool.id))["available"] == 14


async def test_a_csv_saved_with_a_byte_order_mark_keeps_its_states(client: Client, tenant: Tenant) -> None:
    # Spreadsheet programs save "CSV UTF-8" with a byte order mark before the header.
    body = ("\ufeff" + HEADER + "BOM-1,issued,2026-03-01T10:00:00Z,,0\n").encode()
    url = f"/v1/pools/{tenant.pool.id}"
    r = await client.post(
        f"{url}/codes", content=body, headers={**tenant.headers, "content-type": "text/csv"}
    )
    assert r.json()["inserted"] == 1
    code = (await client.get(f"{url}/codes/BOM-1", headers=tenant.headers)).json()
    assert code["state"] == "issued"


async def test_a_header_with_holders_but_no_state_is_refused(client: Client, tenant: Tenant) -> None:
    h = {**tenant.headers, "content-type": "text/csv"}
    r = await client.post(f"/v1/pools/{tenant.pool.id}/codes", content="code,profile\nX1,cust-7\n", headers=h)
    assert_error(r, 400, "invalid_input")
    assert "no state column" in r.json()["error"]["message"]
    assert_error(
        await client.get(f"/v1/pools/{tenant.pool.id}/codes/X1", headers=tenant.headers),
        404,
        "code_not_found",
    )


async def _aiter(items: list[str]) -> AsyncIterator[str]:
    for item in items:
        yield item
