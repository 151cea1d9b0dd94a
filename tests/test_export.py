"""Export: both formats and the state filter through the API and the CLI, and the round trip export →
delete → re-import gives the same set — on both engines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from promopool import service
from promopool.cli import app
from promopool.domain import CodeState
from promopool.domain.generation import CodeSpec
from promopool.storage import Store
from tests.conftest import Tenant
from tests.helpers import assert_error

Client = httpx.AsyncClient


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_csv_and_jsonl_with_state_filter(client: Client, tenant: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}"
    h = tenant.headers
    claimed = (await client.post(f"{url}/claim", headers=h)).json()
    r = await client.get(f"{url}/export", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="pool-{tenant.pool.id}-all.csv"' in r.headers["content-disposition"]
    assert r.text.splitlines()[0] == "code,state,issued_at,profile,usage_count"
    rows = parse_csv(r.text)
    assert [row["code"] for row in rows] == [f"CODE{i:03d}" for i in range(10)]
    first = rows[0]
    assert (first["state"], first["profile"], first["usage_count"]) == ("issued", "", "0")
    assert first["issued_at"].replace("Z", "+00:00")[:19] == claimed["issued_at"].replace("Z", "+00:00")[:19]
    assert rows[1]["issued_at"] == "" and rows[1]["state"] == "available"

    r = await client.get(f"{url}/export?format=jsonl&state=available", headers=h)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert len(lines) == 9 and {line["state"] for line in lines} == {"available"}
    assert lines[0] == {
        "code": "CODE001",
        "state": "available",
        "issued_at": None,
        "profile": None,
        "usage_count": 0,
    }
    issued = await client.get(f"{url}/export?state=issued", headers=h)
    assert [row["code"] for row in parse_csv(issued.text)] == ["CODE000"]
    redeemed = await client.get(f"{url}/export?state=redeemed", headers=h)
    assert redeemed.text == "code,state,issued_at,profile,usage_count\n"


async def test_pages_walk_the_values_in_order(store: Store, tenant: Tenant) -> None:
    account, pool_id = tenant.account, tenant.pool.id  # CODE000 … CODE009
    await service.import_codes(store, account=account, pool_id=pool_id, values=["A1", "Z1"])
    claimed = [(await service.claim(store, account=account, pool_id=pool_id)).code.value for _ in range(4)]

    async def pages(state: CodeState | None, size: int) -> list[list[str]]:
        return [
            [row.code for row in page]
            async for page in store.export_codes(pool_id=pool_id, state=state, batch_size=size)
        ]

    every = await pages(None, 4)
    assert [len(page) for page in every] == [4, 4, 4]  # a full last page: no empty page after it
    assert [code for page in every for code in page] == sorted(
        ["A1", "Z1", *(f"CODE{i:03d}" for i in range(10))]
    )
    assert await pages(CodeState.ISSUED, 3) == [sorted(claimed)[:3], sorted(claimed)[3:]]
    assert await pages(CodeState.REDEEMED, 3) == []


async def test_export_errors(client: Client, tenant: Tenant, other: Tenant) -> None:
    url = f"/v1/pools/{tenant.pool.id}/export"
    assert_error(await client.get(url, headers=other.headers), 404, "pool_not_found")
    assert_error(await client.get(f"{url}?format=xml", headers=tenant.headers), 400, "invalid_input")
    assert_error(await client.get(f"{url}?state=lost", headers=tenant.headers), 400, "invalid_input")


async def test_round_trip_export_delete_reimport(client: Client, store: Store, tenant: Tenant) -> None:
    # More codes than one export page, some issued, one with a comma that CSV must quote.
    h = tenant.headers
    spec = CodeSpec.of(pattern="RT-#####-#####")
    await service.generate_codes(
        store, account=tenant.account, pool_id=tenant.pool.id, spec=spec, count=12_345
    )
    await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=['A,"B'])
    for _ in range(3):
        await client.post(f"/v1/pools/{tenant.pool.id}/claim", headers=h)
    exported = (await client.get(f"/v1/pools/{tenant.pool.id}/export", headers=h)).content
    before = {row["code"] for row in parse_csv(exported.decode())}
    assert len(before) == 12_345 + 10 + 1 and 'A,"B' in before

    assert (await client.delete(f"/v1/pools/{tenant.pool.id}", headers=h)).status_code == 204
    fresh = (await client.post("/v1/pools", json={"name": "again"}, headers=h)).json()
    report = await client.post(
        f"/v1/pools/{fresh['id']}/codes", content=exported, headers={**h, "content-type": "text/csv"}
    )
    assert report.json()["inserted"] == len(before) and report.json()["invalid"] == 0
    again = (await client.get(f"/v1/pools/{fresh['id']}/export?format=jsonl", headers=h)).text
    assert {json.loads(line)["code"] for line in again.splitlines()} == before


def test_cli_generate_and_export(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, ["--database-url", database_url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("accounts", "create", "default")
    pool_id = run("pools", "create", "cli").strip()
    out = run("generate", pool_id, "1500", "--pattern", "CLI-####-####", "--check-character")
    assert "generated 1500 codes" in out
    target = tmp_path / "codes.jsonl"
    run("export", pool_id, "-o", str(target))  # the format follows the suffix
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    spec = CodeSpec.of(pattern="CLI-####-####", check_character=True)
    assert len(rows) == 1500 and all(spec.matches(row["code"]) for row in rows)
    csv_out = run("export", pool_id, "--state", "available", "--format", "csv")
    assert csv_out.splitlines()[0] == "code,state,issued_at,profile,usage_count"
    assert sorted(line.split(",")[0] for line in csv_out.splitlines()[1:]) == sorted(r["code"] for r in rows)

    refused = runner.invoke(
        app, ["--database-url", database_url, "generate", pool_id, "5", "--pattern", "##"]
    )
    assert refused.exit_code == 1 and "key_space_too_small" in refused.output
    bad = runner.invoke(app, ["--database-url", database_url, "export", pool_id, "--state", "gone"])
    assert bad.exit_code == 1 and "state must be" in bad.output
