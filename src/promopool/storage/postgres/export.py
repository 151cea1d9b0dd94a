"""Export: a pool's codes read page by page in value order (postgres engine)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from promopool.domain import CodeState
from promopool.domain.export import ExportRow
from promopool.storage.postgres.base import PostgresBase

EXPORT_SQL = """
SELECT c.value, c.state, c.issued_at, p.external_id, c.usage_count
FROM codes c LEFT JOIN profiles p ON p.id = c.profile_id
WHERE c.pool_id = $1 AND c.value > $2 AND ($3::text IS NULL OR c.state = $3)
ORDER BY c.value LIMIT $4
"""


class PostgresExport(PostgresBase):
    async def export_codes(
        self, *, pool_id: int, state: CodeState | None, batch_size: int
    ) -> AsyncIterator[list[ExportRow]]:
        # Keyset pagination on (pool_id, value) rather than one cursor: each page is a short query on a
        # pooled connection, so a slow reader holds no connection and no transaction between pages.
        after = ""  # every code sorts after the empty string
        while True:
            rows = await self._fetch(
                EXPORT_SQL, pool_id, after, None if state is None else state.value, batch_size
            )
            if rows:
                yield [
                    ExportRow(
                        code=row[0],
                        state=CodeState(row[1]),
                        issued_at=row[2],
                        profile=row[3],
                        usage_count=row[4],
                    )
                    for row in rows
                ]
            if len(rows) < batch_size:
                return
            after = rows[-1][0]
