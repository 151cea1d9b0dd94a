"""The guessing budgets' levels (``domain.guessing``) in a SQLite file that the workers of one
``promopool serve`` share, so that a budget holds for the whole server, whichever worker answers.

``serve`` creates the file in a private temporary directory (``create``), removed when it stops, and hands
its path to the workers (``BUDGETS_ENV``); each worker opens one connection per budget. An update is one
``BEGIN IMMEDIATE`` transaction: the workers take turns, so concurrent attempts on several workers cannot
overdraw a budget. The file is a rate limiter's scratch pad, not data: ``synchronous=OFF`` (a power cut
may lose levels, and the budgets then start full), WAL so that a transaction costs microseconds. It never
touches the service's database.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from promopool.config import ENV_PREFIX
from promopool.domain.guessing import MAX_CALLERS, Change, Level

# Set by `promopool serve` (with more than one worker) for its workers: the path of the shared file.
BUDGETS_ENV = ENV_PREFIX + "BUDGETS_FILE"

SCHEMA = """
CREATE TABLE IF NOT EXISTS levels (
    budget TEXT NOT NULL,
    caller TEXT NOT NULL,
    attempts REAL NOT NULL,
    at REAL NOT NULL,
    full_at REAL NOT NULL,
    PRIMARY KEY (budget, caller)
) WITHOUT ROWID
"""


def create(path: Path) -> None:
    """Make the shared file, before the workers start (they only open it)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode=WAL")  # kept by the file
        db.execute(SCHEMA)
        db.commit()
    finally:
        db.close()


class SharedLedger:
    """The levels of one budget (``name``) in the shared file."""

    def __init__(self, path: str | Path, name: str) -> None:
        # The event loop's thread blocks while another worker's transaction runs: microseconds.
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10)
        self._db.execute("PRAGMA synchronous=OFF")
        self._name = name

    def update(self, callers: Sequence[str], change: Change) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            marks = ", ".join("?" * len(callers))
            rows = db.execute(
                f"SELECT caller, attempts, at, full_at FROM levels WHERE budget = ? AND caller IN ({marks})",
                (self._name, *callers),
            ).fetchall()
            for caller, level in change({row[0]: Level(*row[1:]) for row in rows}).items():
                if level is None:
                    db.execute("DELETE FROM levels WHERE budget = ? AND caller = ?", (self._name, caller))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO levels VALUES (?, ?, ?, ?, ?)",
                        (self._name, caller, level.attempts, level.at, level.full_at),
                    )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def prune(self, now: float) -> None:
        self._db.execute(
            "DELETE FROM levels WHERE budget = ?1 AND (full_at <= ?2 OR caller IN"
            " (SELECT caller FROM levels WHERE budget = ?1 ORDER BY at DESC LIMIT -1 OFFSET ?3))",
            (self._name, now, MAX_CALLERS),
        )

    def __len__(self) -> int:
        (count,) = self._db.execute("SELECT count(*) FROM levels WHERE budget = ?", (self._name,)).fetchone()
        return int(count)

    def close(self) -> None:
        self._db.close()
