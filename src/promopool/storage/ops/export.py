"""Export: a pool's codes in value order, a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator

from promopool.domain import CodeState
from promopool.domain.export import ExportRow
from promopool.storage.core import StoreCore
from promopool.storage.driver import Fetch, Op
from promopool.storage.rows import dt


def export_page(pool_id: int, state: CodeState | None, after: str, limit: int) -> Op[list[ExportRow]]:
    """The first ``limit`` codes whose value sorts after ``after``."""
    of_state = () if state is None else (state.value,)
    rows = yield Fetch(
        "SELECT c.value, c.state, c.issued_at, p.external_id, c.usage_count"
        " FROM codes c LEFT JOIN profiles p ON p.id = c.profile_id WHERE c.pool_id = $1 AND c.value > $2"
        f"{' AND c.state = $4' if of_state else ''} ORDER BY c.value LIMIT $3",
        *(pool_id, after, limit, *of_state),
    )
    return [
        ExportRow(r["value"], CodeState(r["state"]), dt(r["issued_at"]), r["external_id"], r["usage_count"])
        for r in rows
    ]


class Export(StoreCore):
    async def export_codes(
        self, *, pool_id: int, state: CodeState | None, batch_size: int
    ) -> AsyncIterator[list[ExportRow]]:
        """The pool's codes (of one state, or all) in value order, a batch at a time, read page by page
        (keyset on the value) so memory stays constant however large the pool."""
        # Each page is its own short read: a slow consumer holds no connection or transaction between pages.
        after = ""  # every code sorts after the empty string
        while True:
            page = await self._driver.read(export_page(pool_id, state, after, batch_size), paged=True)
            if page:
                yield page
            if len(page) < batch_size:
                return
            after = page[-1].code
