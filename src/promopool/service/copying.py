"""Copy a whole database into an empty one (``promopool copy``, ``backup``, ``restore``), then verify it.

The promise: a code is never handed out twice and never silently lost. Every table is copied with its ids,
each pool with its claim cursor (``next_seq``/``last_seq``), and every id counter of the target is set past
the source's (deleted ids included), so that the next claim on the copy continues where the source stopped
and no id an idempotency record points at is given out again. The source is read in one snapshot, page by
page; the copy is then read back and each table's row count and checksum compared with the source's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from promopool.domain.errors import Conflict, InvalidInput
from promopool.storage import Store
from promopool.storage.ops.tables import JSON_TYPES, NOT_DATA, TABLES, Column, Table, TableReader

COPY_PAGE = 5_000  # rows per read and per insert transaction
_MODULUS = 2**128


@dataclass(slots=True)
class TableCheck:
    """One table's rows and checksum on each side."""

    table: str
    source_rows: int
    source_checksum: str
    target_rows: int = 0
    target_checksum: str = ""

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_checksum) == (self.target_rows, self.target_checksum)


@dataclass(slots=True)
class CopyReport:
    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.tables)

    @property
    def rows(self) -> int:
        return sum(check.source_rows for check in self.tables)


class Checksum:
    """A table's checksum, the same whatever the engine or the order the rows are read in: the sum of each
    row's hash (BLAKE2b, 128 bits). A row is hashed in its portable form, JSON values as canonical JSON
    (PostgreSQL's jsonb keeps neither key order nor spacing)."""

    def __init__(self, columns: Sequence[Column]) -> None:
        self._json = [i for i, column in enumerate(columns) if column.type in JSON_TYPES]
        self.rows = 0
        self._sum = 0

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        for row in rows:
            values = list(row)
            for i in self._json:
                if values[i] is not None:
                    values[i] = json.dumps(json.loads(values[i]), sort_keys=True, separators=(",", ":"))
            # repr: exact and cheap for the portable values (int, str, None)
            digest = hashlib.blake2b(repr(values).encode(), digest_size=16).digest()
            self._sum += int.from_bytes(digest, "big")
        self._sum %= _MODULUS
        self.rows += len(rows)

    @property
    def hex(self) -> str:
        return f"{self._sum:032x}"


ProgressStart = Callable[[int], None]  # the number of rows to copy
ProgressRows = Callable[[str, int], None]  # a table's name, rows just copied


async def copy_database(
    *,
    source: Store,
    target: Store,
    on_start: ProgressStart | None = None,
    on_rows: ProgressRows | None = None,
) -> CopyReport:
    """Copy every table of ``source`` into ``target`` (migrated here; refused unless empty), set the target's
    id counters past the source's, and verify: the report compares each table's rows and checksum."""
    await target.migrate()
    async with source.snapshot() as reading:
        layout = await layout_of(reading, "source")
        async with target.snapshot() as checking:
            target_layout = await layout_of(checking, "target")
            for table in TABLES:
                if await checking.count(table):
                    raise Conflict(
                        f"the target database is not empty (table {table.name} has rows): copy only into an"
                        " empty database, one that neither `promopool migrate` nor `serve` has run on (they"
                        " create the account 'default')"
                    )
        # Each side reads and writes by its own column types, in the source's column order; checksums
        # canonicalise by the PostgreSQL side's types if there is one (SQLite's hold the portable form).
        for table in TABLES:
            target_layout[table.name] = in_order(table, layout[table.name], target_layout[table.name])
        kinds = layout if source.engine == "postgresql" else target_layout
        if on_start is not None:
            on_start(sum([await reading.count(table) for table in TABLES]))
        checks = []
        for table in TABLES:
            checksum = Checksum(kinds[table.name])
            async for page in reading.rows(table, layout[table.name], page_size=COPY_PAGE):
                await target.insert_rows(table, target_layout[table.name], page)
                checksum.add(page)
                if on_rows is not None:
                    on_rows(table.name, len(page))
            checks.append(TableCheck(table.name, checksum.rows, checksum.hex))
        for table in TABLES:
            if table.numbered:
                await target.raise_id_counter(table, await reading.id_counter(table))
    await verify(target, target_layout, kinds, checks)
    return CopyReport(checks)


async def verify(
    target: Store, layout: dict[str, list[Column]], kinds: dict[str, list[Column]], checks: list[TableCheck]
) -> None:
    """Read the copy back and record each table's rows and checksum."""
    async with target.snapshot() as reading:
        for check, (rows, checksum) in zip(checks, await checksums(reading, layout, kinds), strict=True):
            check.target_rows, check.target_checksum = rows, checksum


async def checksums(
    reading: TableReader, layout: dict[str, list[Column]], kinds: dict[str, list[Column]]
) -> list[tuple[int, str]]:
    """Each table's rows and checksum, in TABLES' order, as ``reading`` sees them."""
    sums = []
    for table in TABLES:
        checksum = Checksum(kinds[table.name])
        async for page in reading.rows(table, layout[table.name], page_size=COPY_PAGE):
            checksum.add(page)
        sums.append((checksum.rows, checksum.hex))
    return sums


async def layout_of(reading: TableReader, side: str) -> dict[str, list[Column]]:
    """Each table's columns; refused if the database has a table the copy does not know (it would be lost)."""
    names = await reading.table_names()
    unknown = names - {table.name for table in TABLES} - NOT_DATA
    if unknown:
        raise InvalidInput(
            f"the {side} database has tables promopool does not copy: {', '.join(sorted(unknown))}"
            " (is it from a newer promopool?)"
        )
    return {table.name: await reading.columns(table) for table in TABLES}


def in_order(table: Table, source: list[Column], target: list[Column]) -> list[Column]:
    """The target's columns in the source's order; refused unless both have the same columns."""
    by_name = {column.name: column for column in target}
    if by_name.keys() != {column.name for column in source}:
        raise InvalidInput(
            f"table {table.name} has columns {sorted(c.name for c in source)} on the source and"
            f" {sorted(by_name)} on the target: migrate both with the same promopool version"
        )
    return [by_name[column.name] for column in source]
