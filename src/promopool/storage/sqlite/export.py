"""Export: a pool's codes read page by page in value order (sqlite engine)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from promopool.domain import CodeState
from promopool.domain.export import ExportRow
from promopool.storage.sqlite.base import SQLiteBase


def _row_of(row: sqlite3.Row) -> ExportRow:
    return ExportRow(
        code=row[0],
        state=CodeState(row[1]),
        issued_at=None if row[2] is None else datetime.fromisoformat(row[2]),
        profile=row[3],
        usage_count=row[4],
    )


class SQLiteExport(SQLiteBase):
    async def export_codes(
        self, *, pool_id: int, state: CodeState | None, batch_size: int
    ) -> AsyncIterator[list[ExportRow]]:
        # Keyset pagination on (pool_id, value): each page is one short read through the reader pool, so
        # nothing is held open between pages, however slowly the export is consumed.
        state_filter = "" if state is None else " AND c.state = ?"
        sql = (
            "SELECT c.value, c.state, c.issued_at, p.external_id, c.usage_count FROM codes c"
            " LEFT JOIN profiles p ON p.id = c.profile_id"
            f" WHERE c.pool_id = ? AND c.value > ?{state_filter} ORDER BY c.value LIMIT ?"
        )
        after = ""  # every code sorts after the empty string
        while True:
            params: tuple[Any, ...] = (pool_id, after, *([] if state is None else [state.value]), batch_size)
            rows = await self._rows(sql, params)
            if rows:
                yield [_row_of(row) for row in rows]
            if len(rows) < batch_size:
                return
            after = rows[-1][0]

    async def _rows(self, sql: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        return await self._read(lambda conn: conn.execute(sql, params).fetchall())
