"""Whole tables, row by row, the same on every engine: what copy, backup and restore move
(``service/copying.py``).

A row travels in one portable form, the one SQLite stores: timestamps as ``ts`` text (fixed-width ISO-8601
UTC, microseconds), booleans as 0/1, JSON and numeric as text. PostgreSQL turns its columns into that form in
the SELECT and back in the INSERT, each column by its type in the catalog; SQLite's columns are that form
already (its catalog names no PostgreSQL type, so no conversion is written for it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from promopool.storage.core import StoreCore
from promopool.storage.driver import SQL, Execute, Fetch, FetchVal, Op, SnapshotReader


@dataclass(frozen=True, slots=True)
class Table:
    """A table promopool keeps, with the key its rows are read in order of."""

    name: str
    key: tuple[str, ...]

    @property
    def numbered(self) -> bool:
        """Whether its ids come from a counter (a PostgreSQL sequence, SQLite's rowid or AUTOINCREMENT)."""
        return self.key == ("id",)


# Every table, each after the tables its foreign keys point at (rows are inserted in this order).
TABLES = (
    Table("accounts", ("id",)),
    Table("api_keys", ("id",)),
    Table("api_key_checksums", ("key_hash",)),
    Table("webhook_secrets", ("account_id",)),
    Table("pools", ("id",)),
    Table("pool_alerts", ("pool_id",)),
    Table("pool_activity", ("pool_id", "hour")),
    Table("profile_databases", ("id",)),
    Table("profiles", ("id",)),
    Table("profile_uses", ("pool_id", "profile_id")),
    Table("codes", ("id",)),
    Table("redemptions", ("id",)),
    Table("leases", ("id",)),
    Table("recipient_codes", ("pool_id", "recipient")),
    Table("device_codes", ("pool_id", "did")),
    Table("idempotency_keys", ("account_id", "key")),
    Table("jobs", ("id",)),
    Table("webhook_deliveries", ("id",)),
    Table("cli_runs", ("command", "result")),
)
# Made by the migrations, never copied: the target's own record of its migrations.
NOT_DATA = frozenset({"schema_migrations"})
# A job's owner names a process by the engine's own token (SQLite: a pid; PostgreSQL: an advisory lock's key)
# of the database it was started on: no process of the copy's holds it, so a copied job has none and its
# heartbeat alone decides whether it still runs (storage/ops/jobs.py).
NOT_COPIED = frozenset({("jobs", "owner")})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as the engine's catalog names it: PostgreSQL's typname ('timestamptz'), SQLite's 'TEXT'


# Each PostgreSQL type whose values differ from the portable form: the column read as that form (_READ), and
# text in that form read as the type (_WRITE). Integers and text are the same on both engines.
_READ = {
    "timestamptz": "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    "bool": "{}::int",
    "jsonb": "{}::text",
    "numeric": "{}::text",
}
_WRITE = {
    "timestamptz": "::timestamptz",
    "bool": "::int::boolean",
    "jsonb": "::jsonb",
    "numeric": "::numeric",
}
JSON_TYPES = frozenset({"jsonb"})

# From pg_catalog rather than information_schema, whose views take ~0.3 s a query.
_TABLE_NAMES = SQL(
    postgres="SELECT relname FROM pg_class"
    " WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'p')",
    sqlite="SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'",
)
_COLUMNS = SQL(
    postgres="SELECT a.attname AS name, t.typname AS type FROM pg_attribute a"
    " JOIN pg_type t ON t.oid = a.atttypid"
    " WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
    " ORDER BY a.attnum",
    # hidden: 0 for a plain column, 2 or 3 for a generated one (the database computes it on the copy)
    sqlite="SELECT name, type FROM pragma_table_xinfo($1) WHERE hidden = 0 ORDER BY cid",
)
# The largest id the table's counter has given out: new rows are numbered past it, deleted ids included.
_ID_COUNTER = SQL(
    postgres="SELECT coalesce(max(last_value), 0) FROM pg_sequences"
    " WHERE format('%I.%I', schemaname, sequencename) = pg_get_serial_sequence($1, 'id')",
    sqlite="SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = $1",
)
# SQLite's counters are rows of sqlite_sequence, which has no key to upsert on: one statement adds the row a
# table has none of yet (an AUTOINCREMENT table only: the others number from their largest id), the next
# raises it. PostgreSQL's setval does both at once, and the same call twice changes nothing.
_SET_SEQUENCE = "SELECT setval(pg_get_serial_sequence($1, 'id'), greatest($2::bigint, 1), $2::bigint > 0)"
_ADD_COUNTER = SQL(
    postgres=_SET_SEQUENCE,
    sqlite="INSERT INTO sqlite_sequence (name, seq) SELECT $1, $2"
    " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = $1) AND EXISTS (SELECT 1"
    " FROM sqlite_master WHERE type = 'table' AND name = $1 AND sql LIKE '%AUTOINCREMENT%')",
)
_RAISE_COUNTER = SQL(
    postgres=_SET_SEQUENCE, sqlite="UPDATE sqlite_sequence SET seq = max(seq, $2) WHERE name = $1"
)


def table_names() -> Op[set[str]]:
    rows = yield Fetch(_TABLE_NAMES)
    return {row[0] for row in rows}


def table_columns(table: str) -> Op[list[Column]]:
    """The columns a copy carries, in the table's order: neither generated ones nor NOT_COPIED."""
    rows = yield Fetch(_COLUMNS, table)
    return [Column(row["name"], row["type"]) for row in rows if (table, row["name"]) not in NOT_COPIED]


def _param_cast(column_type: str) -> str:
    """A parameter in the portable form, read as the column's type."""
    return f"::text{_WRITE[column_type]}" if column_type in _WRITE else ""


def _key_after(table: Table, columns: Sequence[Column], first: int) -> str:
    """The condition ``key > (the previous page's last key)``, its parameters numbered from ``first``."""
    types = {column.name: column.type for column in columns}
    params = [f"${first + i}{_param_cast(types[name])}" for i, name in enumerate(table.key)]
    if len(table.key) == 1:
        return f"{table.key[0]} > {params[0]}"
    return f"({', '.join(table.key)}) > ({', '.join(params)})"


def read_page(
    table: Table, columns: Sequence[Column], after: Sequence[Any] | None, limit: int
) -> Op[list[tuple[Any, ...]]]:
    """The first ``limit`` rows (portable, in ``columns``' order) whose key sorts after ``after`` (None: from
    the first row), in key order."""
    select = ", ".join(_READ.get(column.type, "{}").format(column.name) for column in columns)
    where = "" if after is None else f" WHERE {_key_after(table, columns, 2)}"
    rows = yield Fetch(
        f"SELECT {select} FROM {table.name}{where} ORDER BY {', '.join(table.key)} LIMIT $1",
        limit,
        *(after or ()),
    )
    return [tuple(row) for row in rows]


def count_rows(table: Table) -> Op[int]:
    count: int = yield FetchVal(f"SELECT count(*) FROM {table.name}")
    return count


def id_counter(table: Table) -> Op[int]:
    """Past which id the table numbers new rows: its counter, or its largest id if that is larger."""
    counter = yield FetchVal(_ID_COUNTER, table.name)
    largest = yield FetchVal(f"SELECT coalesce(max(id), 0) FROM {table.name}")
    return max(int(counter), int(largest))


def insert_rows(table: Table, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> Op[None]:
    """One statement for the whole page, its rows as one JSON array of arrays (portable values are JSON's
    numbers, strings and null): far faster than a statement per row on either engine."""
    names = ", ".join(column.name for column in columns)
    postgres = ", ".join(
        f"(r ->> {i}){_WRITE.get(column.type, '::' + column.type)}" for i, column in enumerate(columns)
    )
    sqlite = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    yield Execute(
        SQL(
            postgres=f"INSERT INTO {table.name} ({names})"
            f" SELECT {postgres} FROM jsonb_array_elements($1::text::jsonb) AS r",
            sqlite=f"INSERT INTO {table.name} ({names}) SELECT {sqlite} FROM json_each($1)",
        ),
        json.dumps(rows, ensure_ascii=False, separators=(",", ":")),
    )


def raise_id_counter(table: Table, at_least: int) -> Op[None]:
    """Number the table's new rows past ``at_least`` (never lowers the counter on SQLite)."""
    yield Execute(_ADD_COUNTER, table.name, at_least)
    yield Execute(_RAISE_COUNTER, table.name, at_least)


class TableReader:
    """Reads whole tables in one snapshot (``Tables.snapshot``)."""

    def __init__(self, run: SnapshotReader[Any]) -> None:
        self._run = run

    async def table_names(self) -> set[str]:
        result: set[str] = await self._run(table_names())
        return result

    async def columns(self, table: Table) -> list[Column]:
        result: list[Column] = await self._run(table_columns(table.name))
        return result

    async def count(self, table: Table) -> int:
        result: int = await self._run(count_rows(table))
        return result

    async def id_counter(self, table: Table) -> int:
        result: int = await self._run(id_counter(table))
        return result

    async def rows(
        self, table: Table, columns: Sequence[Column], *, page_size: int
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """The table's rows, portable, a page at a time in key order (keyset paging: constant memory)."""
        positions = [[column.name for column in columns].index(name) for name in table.key]
        after: list[Any] | None = None
        while True:
            page: list[tuple[Any, ...]] = await self._run(read_page(table, columns, after, page_size))
            if page:
                yield page
            if len(page) < page_size:
                return
            after = [page[-1][i] for i in positions]


class Tables(StoreCore):
    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[TableReader]:
        """A reader of whole tables that sees the database as it was when it began, for as long as it is
        open (PostgreSQL: a REPEATABLE READ read-only transaction; SQLite: one read transaction)."""
        async with self._driver.snapshot() as run:
            yield TableReader(run)

    async def insert_rows(
        self, table: Table, columns: Sequence[Column], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert portable rows as they are, ids included, in one transaction."""
        await self._driver.write(insert_rows(table, columns, rows))

    async def raise_id_counter(self, table: Table, at_least: int) -> None:
        await self._driver.write(raise_id_counter(table, at_least))
