"""Export: a pool's codes, streamed from the database in constant memory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from promopool.domain import Account, CodeState
from promopool.domain.export import ExportRow
from promopool.service.pools import get_pool
from promopool.storage import Store

EXPORT_BATCH = 5_000  # codes per database read


async def export_codes(
    store: Store, *, account: Account, pool_id: int, state: CodeState | None = None
) -> AsyncIterator[list[ExportRow]]:
    """The pool's codes (of one state, or all) in value order, a batch at a time. The pool is checked
    here, before anything is read, so a missing pool is an error and not a broken stream."""
    await get_pool(store, account=account, pool_id=pool_id)
    return store.export_codes(pool_id=pool_id, state=state, batch_size=EXPORT_BATCH)
