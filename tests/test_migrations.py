"""Migrating an existing database forward keeps its data, its schema and what points at what."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from promopool import service
from promopool.domain import PoolSettings
from promopool.domain.errors import CodeNotFound
from promopool.storage import migrations as storage_migrations
from promopool.storage import open_store
from promopool.storage.ops import codes as storage_codes
from promopool.storage.sqlite import driver as sqlite_driver
from tests.conftest import connected
from tests.helpers import execute_sql

REBUILT = ("codes", "redemptions", "leases", "webhook_deliveries")


def _normal(sql: str | None) -> str:
    """A schema statement without what the rebuild may change: layout, quoting, AUTOINCREMENT."""
    text = re.sub(r"\s+", " ", (sql or "").replace('"', "").replace(" AUTOINCREMENT", ""))
    return text.replace("( ", "(").replace(" )", ")")


def _snapshot(path: Path) -> tuple[set[tuple[str, str, str, str]], dict[str, list[tuple[Any, ...]]]]:
    """Every schema object (tables, indexes, triggers) and every table's rows."""
    with closing(sqlite3.connect(path)) as conn:
        schema = {
            (kind, name, table, _normal(sql))
            for kind, name, table, sql in conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
            if name not in ("sqlite_sequence", "schema_migrations")
        }
        tables = [name for kind, name, _, _ in schema if kind == "table"]
        rows = {table: sorted(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in tables}
    return schema, rows


async def test_migration_9_keeps_an_existing_sqlite_databases_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    # The database as the releases before migration 9 left it, used a while; with the pool columns of
    # migration 16 too, which today's service reads and writes (migration 9 leaves the pools table alone).
    every = storage_migrations.load_migrations("sqlite")
    old = [m for m in every if m.version < 9 or m.version == 16]
    monkeypatch.setattr(sqlite_driver, "load_migrations", lambda engine: old)
    # Imports are counted in a column of migration 17, which that schema lacks: the old release did not count.
    monkeypatch.setattr(storage_codes, "record_imports", lambda pool_id, count, now: iter(()))
    async with connected(url) as store:
        # The account and its key as the schema then held them (create_account writes today's key columns).
        await execute_sql(
            store, "INSERT INTO accounts (name, public_key, created_at) VALUES ('shop', 'pk', '2026-01-01')"
        )
        await execute_sql(
            store,
            "INSERT INTO api_keys (key_hash, account_id, created_at)"
            " SELECT 'digest', id, created_at FROM accounts WHERE name = 'shop'",
        )
        account = await store.account_by_name("shop")
        assert account is not None
        pool_id = (
            await service.create_pool(store, account=account, name="shop-pool", settings=PoolSettings())
        ).id
        await service.import_codes(
            store, account=account, pool_id=pool_id, values=[f"C{i}" for i in range(5)]
        )
        await service.set_low_stock_alert(
            store, account=account, pool_id=pool_id, threshold=3, webhook_url="https://example.test/hook"
        )
        for key in ("k1", "k2", "k3"):
            await service.claim(store, account=account, pool_id=pool_id, idempotency_key=key)
        await service.redeem(store, account=account, code="C0", profile="alice", idempotency_key="pay")
        await service.claim(
            store, account=account, pool_id=pool_id, lease_seconds=600, idempotency_key="cart"
        )
        await store.device_claim(account_id=account.id, pool_id=pool_id, did="device-1")
        await service.import_codes(store, account=account, pool_id=pool_id, values=["LAST"])
        await service.claim(store, account=account, pool_id=pool_id, idempotency_key="last")
        # The last code, deleted: its id is the one SQLite used to give out again.
        await service.delete_code(store, account=account, pool_id=pool_id, value="LAST")
    schema_before, rows_before = _snapshot(path)
    assert rows_before["webhook_deliveries"] and rows_before["device_codes"] and rows_before["leases"]

    # Migration 9 alone (later ones change the schema on purpose).
    monkeypatch.setattr(sqlite_driver, "load_migrations", lambda engine: [m for m in every if m.version <= 9])
    store = open_store(url)
    await store.connect()
    try:
        assert await store.migrate() == [9]
        schema_after, rows_after = _snapshot(path)
        assert schema_after == schema_before
        assert rows_after == rows_before
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            for table in REBUILT:
                (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
                assert "AUTOINCREMENT" in sql, table

        with pytest.raises(CodeNotFound):  # the deleted code's id was not given to the new one
            await service.claim(store, account=account, pool_id=pool_id, idempotency_key="last")
        await service.import_codes(store, account=account, pool_id=pool_id, values=["NEWER"])
        with pytest.raises(CodeNotFound):
            await service.claim(store, account=account, pool_id=pool_id, idempotency_key="last")
        assert (await service.claim(store, account=account, pool_id=pool_id)).code.value == "NEWER"
        replayed = await service.claim(store, account=account, pool_id=pool_id, idempotency_key="k1")
        assert replayed.replayed and replayed.code.value == "C0"
        again = await service.redeem(
            store, account=account, code="C0", profile="alice", idempotency_key="pay"
        )
        assert again.replayed
        # The foreign keys still act: deleting a code takes its redemption with it.
        await service.delete_code(store, account=account, pool_id=pool_id, value="C0")
        with pytest.raises(CodeNotFound):
            await service.get_code(store, account=account, pool_id=pool_id, value="C0")
        with closing(sqlite3.connect(path)) as conn:
            assert conn.execute("SELECT count(*) FROM redemptions").fetchone() == (0,)
    finally:
        await store.close()
