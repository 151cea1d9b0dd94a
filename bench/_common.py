"""What the bench scripts share: logging, the PostgreSQL URL and throw-away schema, code files, results.

The scripts run as ``python bench/<script>.py``, which puts bench/ on sys.path, so they import this module as
``from _common import ...``; bench/ is not a package and nothing outside it imports this.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# The same default the test suite uses, so a machine set up for the tests runs the benches as it is.
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
RESULTS_DIR = Path(__file__).resolve().parent / "results"


class BenchFailure(Exception):
    """A correctness check failed: the figures of this run must not be trusted."""


class DuplicateCodes(BenchFailure):
    """A code was handed out more than once: promopool broke its promise."""


def log(message: str) -> None:
    # Flushed at once: a long run is followed live, and its lines must not trail the stderr of a failure.
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pg_schema_url(pg_url: str | None, prefix: str) -> tuple[str, str]:
    """(promopool URL with a fresh schema ``<prefix>_<random>``, that schema's name).

    The server is ``pg_url`` (``--pg-url``), else $PROMOPOOL_TEST_POSTGRES_URL, else DEFAULT_PG_URL.
    """
    base = pg_url or os.environ.get("PROMOPOOL_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    # A random name per run, so two runs (or a run and the tests) on one database never share tables.
    schema = f"{prefix}_{secrets.token_hex(4)}"
    return with_schema(base, schema), schema


def with_schema(url: str, schema: str) -> str:
    """The URL as promopool takes it, with its own ``schema`` parameter set to ``schema``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    query.append(("schema", schema))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def without_schema(url: str) -> str:
    """The URL as asyncpg takes it: ``schema`` is promopool's own parameter, and ``postgres://`` is
    promopool's alias."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "schema"]
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def schema_of(url: str) -> str:
    """The ``schema`` parameter of a promopool PostgreSQL URL."""
    return dict(parse_qsl(urlsplit(url).query))["schema"]


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///`` URL."""
    return Path(urlsplit(url).path[1:])


async def pg_connect(url: str) -> asyncpg.Connection:
    """An asyncpg connection working in the URL's schema, as promopool's own connections do."""
    return await asyncpg.connect(without_schema(url), server_settings={"search_path": schema_of(url)})


async def fetch_rows(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` (``?`` placeholders) read from the database at ``url`` itself, not through
    promopool: what a check compares promopool's answers with. SQLite opens read-only."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(f"file:{sqlite_path(url)}?mode=ro", uri=True)
        try:
            return [tuple(row) for row in conn.execute(sql, args)]
        finally:
            conn.close()
    numbers = itertools.count(1)
    pg = await pg_connect(url)
    try:
        return [
            tuple(row) for row in await pg.fetch(re.sub(r"\?", lambda _: f"${next(numbers)}", sql), *args)
        ]
    finally:
        await pg.close()


async def drop_schema(url: str, schema: str) -> None:
    """Drop the run's schema and everything in it; ``url`` may carry a ``schema`` parameter or not."""
    conn = await asyncpg.connect(without_schema(url))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def host_info() -> dict[str, Any]:
    # Kept with every result: figures from different machines or Pythons are not comparable.
    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}


def write_json(bench: str, engine: str | None, result: DataclassInstance) -> Path:
    """Write ``result`` to bench/results/<bench>-<engine>-<UTC timestamp>.json (without ``-<engine>`` for a
    result covering every engine) and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = "-".join(part for part in (bench, engine, stamp) if part)
    path = RESULTS_DIR / f"{name}.json"
    # Written to .tmp (git-ignored) and renamed, so an interrupted run leaves no half-written result.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_codes(path: Path, count: int, prefix: str = "C") -> None:
    """``count`` distinct codes ``<prefix>000000000``, ``<prefix>000000001`` … one per line."""
    with path.open("w", encoding="ascii", newline="\n") as out:
        for start in range(0, count, 100_000):
            out.write("".join(f"{prefix}{i:09d}\n" for i in range(start, min(start + 100_000, count))))


def promopool_executable() -> str:
    # The console script next to this interpreter is the one installed with the code being measured; a
    # `promopool` found on PATH might belong to another environment.
    beside = Path(sys.executable).parent / "promopool"
    if beside.is_file():
        return str(beside)
    found = shutil.which("promopool")
    if found is None:
        raise BenchFailure(f"no promopool executable next to {sys.executable} nor on PATH")
    return found


def current_rss_mb(pid: int) -> float | None:
    """The process's resident set now, or None once it is gone (or where /proc is missing)."""
    return _status_mb(pid, "VmRSS:")


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the process's resident set (VmHWM), or None once it is gone."""
    return _status_mb(pid, "VmHWM:")


def _status_mb(pid: int, field: str) -> float | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie has no VmRSS line


def load_average() -> float:
    """The 1-minute load average: above the CPU count, other work competed with the run being measured."""
    return round(os.getloadavg()[0], 2)
