"""Copy, backup and restore (service/copying.py): every row kept with its id, counters past every id, and the
next claim on the copy continuing where the source stopped. Each test starts from each engine."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from promopool import service
from promopool.cli import app
from promopool.domain.errors import Conflict
from promopool.storage import Store
from promopool.storage.ops.tables import JSON_TYPES, TABLES
from tests.conftest import Tenant, connected, drop_schema, with_schema
from tests.helpers import Filled, fill, other_engine

runner = CliRunner()


async def portable_dump(store: Store, kinds: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows in their portable form, JSON as JSON values (typed by ``kinds``' catalog)."""
    dump = {}
    async with store.snapshot() as reading, kinds.snapshot() as typing:
        for table in TABLES:
            columns = await reading.columns(table)
            json_columns = {c.name for c in await typing.columns(table) if c.type in JSON_TYPES}
            rows = []
            async for page in reading.rows(table, columns, page_size=3):
                for row in page:
                    rows.append(
                        tuple(
                            json.loads(v) if c.name in json_columns and v is not None else v
                            for c, v in zip(columns, row, strict=True)
                        )
                    )
            dump[table.name] = rows
    return dump


async def counters(store: Store) -> dict[str, int]:
    async with store.snapshot() as reading:
        return {table.name: await reading.id_counter(table) for table in TABLES if table.numbered}


async def test_copy_to_the_other_engine_keeps_every_row_and_continues_the_claims(
    store: Store, tmp_path: Path, postgres_url: str
) -> None:
    filled = await fill(store)
    account, pool_id = filled.tenant.account, filled.tenant.pool.id
    async with other_engine(store, tmp_path, postgres_url, "copy") as copy:
        report = await service.copy_database(source=store, target=copy)
        assert report.ok
        rows = {check.table: check.target_rows for check in report.tables}
        assert rows["codes"] == 13 and rows["redemptions"] == 2 and rows["leases"] == 1
        assert rows["api_keys"] == 3 and rows["profiles"] >= 3 and rows["idempotency_keys"] == 2
        assert rows["webhook_deliveries"] >= 1 and rows["pool_activity"] >= 1
        assert await counters(copy) == await counters(store)

        replay = await service.claim(copy, account=account, pool_id=pool_id, idempotency_key=filled.claim_key)
        assert replay.replayed and replay.code.value == filled.claimed_with_key
        on_copy = await service.claim(copy, account=account, pool_id=pool_id)
        on_source = await service.claim(store, account=account, pool_id=pool_id)
        assert on_copy.code.value == on_source.code.value
        handed_out = {on_copy.code.value}
        while True:
            try:
                handed_out.add((await service.claim(copy, account=account, pool_id=pool_id)).code.value)
            except Conflict:  # pool_exhausted
                break
        assert not handed_out & filled.issued
        assert await service.authenticate(copy, api_key=filled.tenant.api_key) == account

        await service.import_codes(copy, account=account, pool_id=pool_id, values=["NEW1"])
        new = await service.get_code(copy, account=account, pool_id=pool_id, value="NEW1")
        assert new.id > filled.deleted_code_id

        with pytest.raises(Conflict, match="not empty"):
            await service.copy_database(source=store, target=copy)


async def test_sqlite_to_postgresql_and_back_is_exact(tmp_path: Path, postgres_url: str) -> None:
    async with (
        connected(f"sqlite:///{tmp_path}/first.db") as first,
        connected(postgres_url) as middle,
        connected(f"sqlite:///{tmp_path}/last.db") as last,
    ):
        await fill(first)
        assert (await service.copy_database(source=first, target=middle)).ok
        assert (await service.copy_database(source=middle, target=last)).ok
        assert await portable_dump(last, middle) == await portable_dump(first, middle)
        assert await counters(last) == await counters(first)


async def test_the_verification_reports_a_difference(store: Store, tmp_path: Path, postgres_url: str) -> None:
    await fill(store)
    async with other_engine(store, tmp_path, postgres_url, "copy") as copy:
        report = await service.copy_database(source=store, target=copy)
        pools = next(check for check in report.tables if check.table == "pools")
        pools.target_checksum = "0" * 32  # what a lost or changed row would show
        assert pools.ok is False and report.ok is False


def cli(url: str, *args: str) -> str:
    result = runner.invoke(app, ["--database-url", url, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fresh_like(url: str, tmp_path: Path, server_url: str) -> tuple[str, str | None]:
    """A URL to an empty database of ``url``'s engine, and its schema (PostgreSQL: dropped by the caller)."""
    if url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/restored.db", None
    schema = "t_" + uuid.uuid4().hex[:12]
    return with_schema(server_url, schema), schema


async def filled_with_counters(url: str) -> tuple[Filled, dict[str, int]]:
    async with connected(url) as store:
        return await fill(store), await counters(store)


async def next_claims(restored_url: str, source_url: str, filled: Filled) -> tuple[dict[str, int], str, str]:
    """The restored database's counters, and the next claim on it and on the source."""
    account, pool_id = filled.tenant.account, filled.tenant.pool.id
    async with connected(restored_url) as restored, connected(source_url) as source:
        mine = await service.claim(restored, account=account, pool_id=pool_id)
        theirs = await service.claim(source, account=account, pool_id=pool_id)
        return await counters(restored), mine.code.value, theirs.code.value


# Not a coroutine: the CLI runs its own event loop.
def test_backup_and_restore_round_trip(database_url: str, tmp_path: Path, postgres_server_url: str) -> None:
    filled, before = asyncio.run(filled_with_counters(database_url))
    backup = tmp_path / "promopool-backup.db"
    assert "counts and checksums equal" in cli(database_url, "backup", str(backup))
    refused = runner.invoke(app, ["--database-url", database_url, "backup", str(backup)])
    assert refused.exit_code == 1 and "never overwrites" in refused.output

    restored_url, schema = fresh_like(database_url, tmp_path, postgres_server_url)
    try:
        assert "counts and checksums equal" in cli(restored_url, "restore", str(backup))
        again = runner.invoke(app, ["--database-url", restored_url, "restore", str(backup)])
        assert again.exit_code == 1 and "not empty" in again.output
        after, mine, theirs = asyncio.run(next_claims(restored_url, database_url, filled))
    finally:
        if schema is not None:
            asyncio.run(drop_schema(postgres_server_url, schema))
    assert after == before
    assert mine == theirs and mine not in filled.issued


async def test_a_snapshot_does_not_see_later_writes(store: Store, tenant: Tenant) -> None:
    codes = next(table for table in TABLES if table.name == "codes")
    async with store.snapshot() as reading:
        before = await reading.count(codes)
        await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=["LATER"])
        assert await reading.count(codes) == before
    async with store.snapshot() as reading:
        assert await reading.count(codes) == before + 1
