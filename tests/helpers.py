"""Helpers shared by test modules (no test module imports another)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from promopool import service
from promopool.domain import Account
from promopool.storage import Store
from promopool.storage.driver import Execute, Fetch, Op
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
