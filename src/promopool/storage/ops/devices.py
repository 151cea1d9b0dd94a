"""Device codes: the PersonaClick front-end fetch, one code per (pool, did) until redeemed.

The binding is written in the claim's own transaction, under the pool's row (which every claim takes first):
two concurrent first calls of one device take turns, and the second finds the binding and replays its code.
"""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Claimed, CodeState
from promopool.domain.errors import PoolExhausted
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Op
from promopool.storage.ops.claims import lock_claimable, take
from promopool.storage.ops.codes import code_where


def device_claim(account_id: int, pool_id: int, did: str, now: datetime) -> Op[Claimed]:
    cursor = yield from lock_claimable(account_id, pool_id, now)
    bound = yield from code_where(
        "id = (SELECT code_id FROM device_codes WHERE pool_id = $1 AND did = $2)", pool_id, did
    )
    if bound is not None and bound.usage_count == 0 and bound.state != CodeState.REDEEMED:
        return Claimed(bound, replayed=True)
    codes = yield from take(pool_id, cursor, 1, now)
    if not codes:
        raise PoolExhausted(pool_id)
    yield Execute(
        "INSERT INTO device_codes (pool_id, did, code_id, created_at) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (pool_id, did) DO UPDATE SET code_id = excluded.code_id,"
        " created_at = excluded.created_at",
        pool_id,
        did,
        codes[0].id,
        now,
    )
    return Claimed(codes[0])


class Devices(StoreCore):
    async def device_claim(self, *, account_id: int, pool_id: int, did: str) -> Claimed:
        """The code bound to device ``did`` in the pool while it has no use (``replayed``); otherwise claim
        the pool's next code (as ``claim``, not coalesced) and bind it to the device, in one transaction under
        the pool's lock, so that concurrent first calls of one device take one code. PoolNotFound,
        PoolExpired, PoolExhausted."""
        return await self._driver.write(device_claim(account_id, pool_id, did, self.clock()))
