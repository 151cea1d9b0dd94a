"""``promopool backup FILE``: the database as it was at one moment, in a new SQLite file, durable, verified.

SQLite: the engine's online backup API, run inside one read transaction on the source (storage/sqlite/
backup.py), so that servers may keep writing and the copy still is one point in time. Then the same
verification as a copy (service/copying.py): each table's rows and checksum, read from the source in that
very snapshot, against the file's. PostgreSQL: the table copy of copying.py, read in one REPEATABLE READ
snapshot (a file in promopool's portable form, restorable into either engine, as the SQLite backup is).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from promopool.domain.errors import Conflict
from promopool.service.copying import (
    CopyReport,
    ProgressRows,
    ProgressStart,
    TableCheck,
    checksums,
    copy_database,
    in_order,
    layout_of,
    verify,
)
from promopool.storage import Store, open_store
from promopool.storage.ops.tables import TABLES

ProgressPages = Callable[[int, int], None]  # pages copied so far, pages in all


async def backup_database(
    *,
    source: Store,
    path: Path,
    on_start: ProgressStart | None = None,
    on_rows: ProgressRows | None = None,
    on_pages: ProgressPages | None = None,
) -> CopyReport:
    """Back ``source`` up into a new SQLite file at ``path`` (refused if it exists) and verify it: the report
    compares each table's rows and checksum in the backup with the source's at the moment it was taken."""
    url = f"sqlite:///{path}"
    if source.engine != "sqlite":
        # The SQLite path refuses it atomically (O_EXCL); a copy needs a new file as well.
        if await asyncio.to_thread(path.exists):
            raise Conflict(f"{path} exists; a backup never overwrites a file")
        target = open_store(url)
        await target.connect()
        try:
            return await copy_database(source=source, target=target, on_start=on_start, on_rows=on_rows)
        finally:
            await target.close()
    async with source.backup(str(path), on_pages) as reading:
        layout = await layout_of(reading, "source")
        sums = await checksums(reading, layout, layout)
    checks = [TableCheck(table.name, *sum_) for table, sum_ in zip(TABLES, sums, strict=True)]
    backup = open_store(url)
    await backup.connect()
    try:
        async with backup.snapshot() as checking:
            found = await layout_of(checking, "backup")
        file_layout = {table.name: in_order(table, layout[table.name], found[table.name]) for table in TABLES}
        await verify(backup, file_layout, layout, checks)
    finally:
        await backup.close()
    return CopyReport(checks)
