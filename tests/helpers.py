"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import httpx
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from promopool import service
from promopool.cli import app
from promopool.domain import Account, PoolSettings
from promopool.domain.errors import PoolExhausted
from promopool.domain.profiles import identity
from promopool.storage import Store, open_store
from promopool.storage.driver import Execute, Fetch, Op
from tests.conftest import Tenant, connected, make_tenant
from tests.reliability.integrity import pg_connection, sqlite_path

# A scrape of /metrics: each sample's value by its name and labels.
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _execute(sql: str) -> Op[int]:
    changed: int = yield Execute(sql)
    return changed


async def execute_sql(store: Store, sql: str) -> int:
    """Run one statement, written so both engines read it, in its own transaction: for setting up a state
    no operation makes (a test's shortcut, never a way around a rule under test). Rows changed."""
    return await store._driver.write(_execute(sql))


def _state_counts(pool_id: int) -> Op[dict[str, int]]:
    rows = yield Fetch("SELECT state, count(*) AS n FROM codes WHERE pool_id = $1 GROUP BY state", pool_id)
    return {row["state"]: int(row["n"]) for row in rows}


async def state_counts(store: Store, pool_id: int) -> dict[str, int]:
    """How many codes of each state the pool's rows hold, counted row by row (whatever the pool's size)."""
    counted = await store._driver.read(_state_counts(pool_id))
    return {state: counted.get(state, 0) for state in ("available", "issued", "redeemed")}


def _issued_values(pool_id: int) -> Op[list[str]]:
    rows = yield Fetch("SELECT value FROM codes WHERE pool_id = $1 AND state <> 'available'", pool_id)
    return [row["value"] for row in rows]


async def issued_values(store: Store, pool_id: int) -> list[str]:
    """Every code of the pool the database records as handed out (issued or redeemed since)."""
    return await store._driver.read(_issued_values(pool_id))


async def assert_counters_exact(store: Store, account: Account, pool_id: int) -> None:
    """The pool's counters equal its rows' states, counted."""
    counts = (await service.get_pool(store, account=account, pool_id=pool_id)).counts
    kept = {"available": counts.available, "issued": counts.issued, "redeemed": counts.redeemed}
    assert kept == await state_counts(store, pool_id)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, /, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, /, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@asynccontextmanager
async def pool_held(url: str, pool_id: int) -> AsyncIterator[None]:
    """Another session holding the pool: its row FOR UPDATE (PostgreSQL), the write lock (SQLite)."""
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url), isolation_level=None)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("ROLLBACK")
        return
    async with pg_connection(url) as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM pools WHERE id = $1 FOR UPDATE", pool_id)
        yield


# The admin pages: what a browser sends and reads.
HTML = {"Accept": "text/html"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, api_key: str) -> str:
    """Sign in through the form; return the CSRF token of the pages that follow."""
    form = await client.get("/admin/login", headers=HTML)
    assert form.status_code == 200
    signed = await client.post("/admin/login", data={"api_key": api_key, "csrf_token": csrf_of(form.text)})
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/"
    page = await client.get("/admin/", headers=HTML)
    assert page.status_code == 200
    return csrf_of(page.text)


class FakeClock:
    """A store's clock that moves only when told (no sleeps in tests)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


# -- moved from test modules, so that no test module imports another -------------------------------------


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def snapshot(store: Store, tenant: Tenant) -> Any:
    pools = await service.list_pools(store, account=tenant.account)
    codes = {
        p.id: await service.list_codes(store, account=tenant.account, pool_id=p.id, limit=1000) for p in pools
    }
    return pools, codes


# Claimers per process of a multi-process drain (tests/test_concurrency.py).
CLAIMERS = 8


async def _drain_in_process(url: str, account_name: str, pool_id: int) -> tuple[list[str], int]:
    store = open_store(url)
    await store.connect()
    try:
        account = await store.account_by_name(account_name)
        assert account is not None

        async def claimer() -> tuple[list[str], int]:
            got: list[str] = []
            while True:
                try:
                    got.append((await service.claim(store, account=account, pool_id=pool_id)).code.value)
                except PoolExhausted:
                    return got, 1

        results = await asyncio.gather(*[claimer() for _ in range(CLAIMERS)])
        return [code for codes, _ in results for code in codes], sum(ended for _, ended in results)
    finally:
        await store.close()


def drain_worker(url: str, account_name: str, pool_id: int) -> tuple[list[str], int]:
    return asyncio.run(_drain_in_process(url, account_name, pool_id))


def run_workers(fn: object, argument_sets: list[tuple[object, ...]]) -> tuple[list[str], int]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(argument_sets), mp_context=context) as pool:
        futures = [pool.submit(fn, *args) for args in argument_sets]  # type: ignore[arg-type]
        results = [f.result(timeout=600) for f in futures]
    return [code for codes, _ in results for code in codes], sum(ended for _, ended in results)


def xml_promotion(element: Element) -> dict[str, Any]:
    assert [child.tag for child in element] == ["code", "description", "usage"]
    usage = element.find("usage")
    assert usage is not None and usage.get("type") == "integer"
    return {
        "code": element.findtext("code"),
        "description": element.findtext("description") or "",
        "usage": int(usage.text or ""),
    }


def xml_array(body: bytes) -> list[dict[str, Any]]:
    root = SafeET.fromstring(body)
    assert root.tag == "promotions" and root.get("type") == "array"
    assert all(child.tag == "promotion" for child in root)
    return [xml_promotion(child) for child in root]


runner = CliRunner()


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit((parts.scheme, f"{userinfo}:{password}@{host}", parts.path, parts.query, ""))


async def attach(store: Store, account: Account, pool_id: int, value: str, profile: str) -> None:
    """Attach a code to a profile (named as redemptions name profiles). There is no attach use case yet (the
    Altcraft dialect brings it), so the profile is created by a redemption, rolled back, and the code's
    holder is set directly."""
    helper = await service.create_pool(store, account=account, name="helper", settings=PoolSettings())
    await service.import_codes(store, account=account, pool_id=helper.id, values=["HELPER"])
    done = await service.redeem(store, account=account, code="HELPER", pool_id=helper.id, profile=profile)
    await service.delete_pool(store, account=account, pool_id=helper.id)
    profile_id = done.redemption.profile_id
    code = await service.get_code(store, account=account, pool_id=pool_id, value=value)
    sql = f"UPDATE codes SET profile_id = {profile_id} WHERE id = {code.id}"
    await execute_sql(store, sql)


async def seed(url: str, name: str, codes: int) -> tuple[str, int]:
    async with connected(url) as store:
        tenant = await make_tenant(store, name)
        await service.import_codes(
            store,
            account=tenant.account,
            pool_id=tenant.pool.id,
            values=(f"K{i:07d}" for i in range(codes)),
        )
        return tenant.api_key, tenant.pool.id


ALTCRAFT_BASE = "/api/v1.1/promocodes"


@dataclass
class Filled:
    tenant: Tenant
    issued: set[str]  # every code handed out on the source
    claim_key: str
    claimed_with_key: str
    deleted_code_id: int


async def fill(store: Store) -> Filled:
    """Codes in every state, redemptions (one rolled back), a lease, profiles, keys, idempotency records, a
    low-stock delivery, and a deleted code (the largest id: the copy must not give it out again)."""
    tenant = await make_tenant(store, "acme", [f"CODE{i:03d}" for i in range(12)])
    account, pool_id = tenant.account, tenant.pool.id
    await service.create_api_key(store, account=account)
    await service.set_low_stock_alert(
        store, account=account, pool_id=pool_id, threshold=8, webhook_url="https://hooks.example/x"
    )
    keyed = await service.claim(store, account=account, pool_id=pool_id, idempotency_key="claim-1")
    plain = await service.claim(store, account=account, pool_id=pool_id)
    leased = await service.claim(store, account=account, pool_id=pool_id, lease_seconds=600)
    redeemed = await service.claim(store, account=account, pool_id=pool_id)
    await service.redeem(
        store,
        account=account,
        code=redeemed.code.value,
        profile="cust-1",
        order_ref="order-7",
        amount=Decimal("12.50"),
        metadata={"zeta": 1, "basket": ["a", "b"], "note": "é"},
        idempotency_key="redeem-1",
    )
    undone = await service.redeem(store, account=account, code=plain.code.value, profile="cust-2")
    await service.rollback_redemption(store, account=account, redemption_id=undone.redemption.id)
    crm = await service.create_profile_database(store, account=account, name="crm")
    attached = await service.attach_code(
        store,
        account=account,
        pool_id=pool_id,
        database_id=crm.id,
        identity=identity(matching="email", email="ann@example.com", field_name="card", field_value="C-7"),
        code=None,
    )
    other = await make_tenant(store, "rival", ["R1", "R2"])
    await service.update_pool(
        store, account=other.account, pool_id=other.pool.id, public_fetch=True, max_uses=3, holder_only=True
    )
    last = await service.get_code(store, account=other.account, pool_id=other.pool.id, value="R2")
    await service.delete_code(store, account=other.account, pool_id=other.pool.id, value="R2")
    issued = {keyed.code.value, plain.code.value, leased.code.value, redeemed.code.value, attached.value}
    return Filled(tenant, issued, "claim-1", keyed.code.value, last.id)


@asynccontextmanager
async def other_engine(store: Store, tmp_path: Path, postgres_url: str, name: str) -> AsyncIterator[Store]:
    """An empty store of the engine ``store`` is not."""
    url = postgres_url if store.engine == "sqlite" else f"sqlite:///{tmp_path}/{name}.db"
    async with connected(url) as target:
        yield target


def cli(database_url: str, *args: str, exit_code: int = 0) -> str:
    result = runner.invoke(app, ["--database-url", database_url, *args], catch_exceptions=False)
    assert result.exit_code == exit_code, result.output
    return result.output


async def call(client: httpx.AsyncClient, method: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
    return await client.post(f"{ALTCRAFT_BASE}/{method}", json=body, **kwargs)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] == 0 and body["error_text"] == "Successful operation"
    return body["data"]


async def multi_use_pool(store: Store, account: Account, **settings: object) -> int:
    pool = await service.create_pool(
        store,
        account=account,
        name="multi",
        settings=PoolSettings(**settings),  # type: ignore[arg-type]
    )
    await service.import_codes(store, account=account, pool_id=pool.id, values=["MULTI", "OTHER"])
    return pool.id
