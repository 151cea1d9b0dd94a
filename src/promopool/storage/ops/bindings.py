"""Which recipient holds which code of a pool (``recipient_codes``, migration 0014): the rows every path that
takes a code away from its recipient must drop, kept apart from the claim (``ops/recipients.py``) so that
leases and detaching can drop them without importing the claim."""

from __future__ import annotations

from collections.abc import Sequence

from promopool.storage.driver import Execute, Op


def unbind(pool_id: int, code_ids: Sequence[int]) -> Op[None]:
    """Forget the recipients of these codes of the pool: their next claim gets a fresh code."""
    if code_ids:
        yield Execute(
            "DELETE FROM recipient_codes WHERE pool_id = $1 AND code_id = ANY($2::bigint[])",
            pool_id,
            list(code_ids),
        )
