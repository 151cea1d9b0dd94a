"""Each engine's versioned SQL files, ``<engine>/NNNN_name.sql``, and the operation that applies the pending
ones (a driver runs it in a transaction of its own, holding what keeps other migrators out)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from promopool.storage.driver import SQL, Execute, Fetch, Op, Script

MIGRATIONS_TABLE = SQL(
    postgres="CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)",
    sqlite="CREATE TABLE IF NOT EXISTS schema_migrations"
    " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
)
RECORD = "INSERT INTO schema_migrations VALUES ($1, $2, $3)"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(engine: str) -> list[Migration]:
    """The engine's migrations, in order."""
    folder = resources.files(__name__).joinpath(engine)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def apply(migrations: list[Migration], now: datetime) -> Op[list[int]]:
    """Apply the migrations not yet recorded as applied; the versions applied now."""
    yield Execute(MIGRATIONS_TABLE)
    done = {row["version"] for row in (yield Fetch("SELECT version FROM schema_migrations"))}
    applied = []
    for migration in migrations:
        if migration.version not in done:
            yield Script(migration.sql)
            yield Execute(RECORD, migration.version, migration.name, now)
            applied.append(migration.version)
    return applied
