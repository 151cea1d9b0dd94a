"""Shared fixtures of the reliability suite, and the tally of faults injected and hostile requests sent.

Each test adds what it did to ``tally`` (``tally.add("SIGKILL of a serving process", 10)``); the totals are
printed at the end of the run (they are the numbers in docs/reliability.md) and, when
``PROMOPOOL_RELIABILITY_COUNTS`` names a file, written there as JSON.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import drop_schema, with_schema

COUNTS_ENV = "PROMOPOOL_RELIABILITY_COUNTS"
TALLY: Counter[str] = Counter()


class Tally:
    def add(self, what: str, count: int = 1) -> None:
        TALLY[what] += count


@pytest.fixture(scope="session")
def tally() -> Tally:
    return Tally()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("reliability: faults injected and hostile requests sent")
    for what, count in sorted(TALLY.items()):
        terminalreporter.write_line(f"{count:>9,}  {what}")
    target = os.environ.get(COUNTS_ENV)
    if target:
        Path(target).write_text(json.dumps(dict(sorted(TALLY.items())), indent=2) + "\n")


@pytest.fixture
async def fresh_url(request: pytest.FixtureRequest, tmp_path: Path, engine: str) -> AsyncIterator[str]:
    """An empty database of ``engine`` (a test parametrizes ``engine``), removed afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp_path}/promopool.db"
        return
    server: str = request.getfixturevalue("postgres_server_url")
    schema = "r_" + uuid.uuid4().hex[:12]
    yield with_schema(server, schema)
    await drop_schema(server, schema)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)
