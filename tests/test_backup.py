"""Backup (service/backups.py): SQLite's through the online backup API, PostgreSQL's a copy in one snapshot;
either is one moment of the database while claims go on, verified, and restores into a database whose next
claim continues from that moment: no code handed out twice, none lost."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from promopool import service
from promopool.domain.errors import Conflict, PoolExhausted
from promopool.storage import Store
from promopool.storage.ops.tables import TABLES
from promopool.storage.sqlite import backup as sqlite_backup
from tests.conftest import connected
from tests.helpers import Filled, fill, other_engine

CODES = next(table for table in TABLES if table.name == "codes")


async def code_states(store: Store, pool_id: int) -> dict[str, str]:
    """Each code of the pool by value: its state."""
    async with store.snapshot() as reading:
        columns = await reading.columns(CODES)
        names = [column.name for column in columns]
        pool, value, state = names.index("pool_id"), names.index("value"), names.index("state")
        return {
            row[value]: row[state]
            async for page in reading.rows(CODES, columns, page_size=1_000)
            for row in page
            if row[pool] == pool_id
        }


def handed_out(states: dict[str, str]) -> set[str]:
    return {value for value, state in states.items() if state != "available"}


async def drain(store: Store, filled: Filled) -> list[str]:
    """Claim the pool empty: the codes handed out, in order."""
    account, pool_id = filled.tenant.account, filled.tenant.pool.id
    claimed = []
    while True:
        try:
            claimed.append((await service.claim(store, account=account, pool_id=pool_id)).code.value)
        except PoolExhausted:
            return claimed


async def filled_with_bulk(store: Store) -> Filled:
    """fill()'s rows, and enough codes that a SQLite file spans many pages."""
    filled = await fill(store)
    bulk = [f"BULK{i:05d}" for i in range(3_000)]
    tenant = filled.tenant
    await service.import_codes(store, account=tenant.account, pool_id=tenant.pool.id, values=bulk)
    return filled


async def test_sqlite_backup_api_is_one_moment_while_claims_commit_between_its_steps(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two pages a step: the backup takes many steps, and a claim commits after each of them. A backup
    # stepping outside one read transaction would restart on each (its progress going back) or mix moments.
    monkeypatch.setattr(sqlite_backup, "STEP_PAGES", 2)
    async with connected(f"sqlite:///{tmp_path}/live.db") as source:
        filled = await filled_with_bulk(source)
        account, pool_id = filled.tenant.account, filled.tenant.pool.id
        before = await code_states(source, pool_id)
        loop = asyncio.get_running_loop()
        progress: list[tuple[int, int]] = []
        during: list[str] = []

        def on_pages(copied: int, total: int) -> None:
            # Called in the backup's thread between two steps; the claim runs on the event loop meanwhile.
            progress.append((copied, total))
            claim = service.claim(source, account=account, pool_id=pool_id)
            during.append(asyncio.run_coroutine_threadsafe(claim, loop).result(timeout=30).code.value)

        path = tmp_path / "backup.db"
        report = await service.backup_database(source=source, path=path, on_pages=on_pages)
        assert report.ok
        assert len(progress) > 10 and len({total for _, total in progress}) == 1
        assert [copied for copied, _ in progress] == sorted({copied for copied, _ in progress})
        assert progress[-1][0] == progress[-1][1]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert handed_out(await code_states(source, pool_id)) == handed_out(before) | set(during)

    async with connected(f"sqlite:///{path}") as backup, connected(postgres_url) as restored:
        assert await code_states(backup, pool_id) == before  # the moment it began, none of the later claims
        assert (await service.copy_database(source=backup, target=restored)).ok
        claimed = await drain(restored, filled)
    assert claimed[: len(during)] == during  # the next claim continues from the backup's moment
    assert not set(claimed) & handed_out(before) and len(set(claimed)) == len(claimed)
    assert set(claimed) | handed_out(before) == set(before)


async def test_a_backup_taken_while_claims_run_restores_to_one_consistent_moment(
    store: Store, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backup, "STEP_PAGES", 4)
    filled = await filled_with_bulk(store)
    account, pool_id = filled.tenant.account, filled.tenant.pool.id
    before = handed_out(await code_states(store, pool_id))
    done = asyncio.Event()

    async def claims() -> set[str]:
        values = set()
        while not done.is_set():
            values.add((await service.claim(store, account=account, pool_id=pool_id)).code.value)
            await asyncio.sleep(0)
        return values

    claiming = asyncio.create_task(claims())
    await asyncio.sleep(0.05)  # some claims first (not a timing assertion: any number is fine)
    try:
        report = await service.backup_database(source=store, path=tmp_path / "backup.db")
    finally:
        done.set()
        during = await claiming
    assert report.ok and during

    async with (
        connected(f"sqlite:///{tmp_path}/backup.db") as backup,
        other_engine(store, tmp_path, postgres_url, "restored") as restored,
    ):
        assert (await service.copy_database(source=backup, target=restored)).ok
        at_backup = await code_states(restored, pool_id)
        taken = handed_out(at_backup)
        assert before <= taken <= before | during
        pool = await service.get_pool(restored, account=account, pool_id=pool_id)
        claimed = await drain(restored, filled)
    # The pool row and its codes are of the same moment: its counter agrees with the codes left.
    assert pool.counts.available == len(claimed) == len(at_backup) - len(taken)
    assert not set(claimed) & taken and set(claimed) | taken == set(at_backup)


async def test_a_backup_never_overwrites_a_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "precious.db"
    path.write_bytes(b"keep me")
    with pytest.raises(Conflict, match="never overwrites"):
        await service.backup_database(source=store, path=path)
    assert path.read_bytes() == b"keep me"
