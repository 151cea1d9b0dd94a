"""Promotions: an account's codes across its pools (the SuperSaaS dialect)."""

from __future__ import annotations

from datetime import datetime

from promopool.domain import Code
from promopool.domain.errors import AlreadyExists
from promopool.storage.core import StoreCore
from promopool.storage.driver import Execute, Fetch, FetchRow, FetchVal, Op
from promopool.storage.ops.codes import code_where
from promopool.storage.ops.lookup import same_code_in_pool
from promopool.storage.ops.pools import lock_pool
from promopool.storage.rows import CODE_COLUMNS, code_of

# A position in an account-wide listing: (pool id, code value).
CodeKey = tuple[int, str]

# The account's pools from a given id on, with their exact code counts (kept in the pool row).
ACCOUNT_POOLS = (
    "SELECT id, n_available + n_issued + n_redeemed AS total FROM pools"
    " WHERE account_id = $1 AND id >= $2 ORDER BY id"
)
CODES_AFTER = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 AND value > $2 ORDER BY value LIMIT $3"
CODES_FROM = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 ORDER BY value LIMIT $2 OFFSET $3"
IN_ACCOUNT = "pool_id IN (SELECT id FROM pools WHERE account_id = $2)"


def list_account_codes(account_id: int, after: CodeKey | None, offset: int, limit: int) -> Op[list[Code]]:
    first_pool, skip = (0, offset) if after is None else (after[0], 0)
    found: list[Code] = []
    for pool in (yield Fetch(ACCOUNT_POOLS, account_id, first_pool)):
        want = limit - len(found)
        if want <= 0:
            break
        if after is not None and pool["id"] == first_pool:
            rows = yield Fetch(CODES_AFTER, pool["id"], after[1], want)
        elif pool["total"] <= skip:  # a whole pool inside the offset, or an empty one: not read
            skip -= pool["total"]
            continue
        else:
            rows = yield Fetch(CODES_FROM, pool["id"], want, skip)
            skip = 0
        found += [code_of(row) for row in rows]
    return found


def find_account_code(account_id: int, value: str) -> Op[Code | None]:
    return (yield from code_where(f"value = $1 AND {IN_ACCOUNT} ORDER BY pool_id LIMIT 1", value, account_id))


def duplicate_code(account_id: int, template_id: int, value: str, now: datetime) -> Op[Code | None]:
    # Duplicates into one account take turns, so two of them into different pools cannot both find the value
    # free. Not FOR UPDATE: the key share lock a claim's low-stock event (under its pool's row) or a new pool
    # takes on the account row must not wait for this one.
    yield Execute("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account_id)
    template = yield FetchRow(
        f"SELECT pool_id, description, expires_at FROM codes WHERE id = $1 AND {IN_ACCOUNT}",
        template_id,
        account_id,
    )
    if template is None:
        return None
    pool_id = template["pool_id"]
    # The pool's row before the checks: an import into the pool (which takes it too) cannot add the value
    # between the checks and the insert.
    if not (yield from lock_pool(pool_id)):  # deleted since, with the template
        return None
    if (yield from find_account_code(account_id, value)) is not None:
        raise AlreadyExists(f"promotion code {value!r} already exists", code=value)
    if (same := (yield from same_code_in_pool(pool_id, value))) is not None:  # the pool's normalization
        raise AlreadyExists(f"promotion code {value!r} already exists as {same!r}", code=value)
    seq = yield FetchVal(
        "UPDATE pools SET last_seq = last_seq + 1, n_available = n_available + 1 WHERE id = $1"
        " RETURNING last_seq",
        pool_id,
    )
    row = yield FetchRow(
        "INSERT INTO codes (pool_id, seq, value, description, expires_at, created_at)"
        f" VALUES ($1, $2, $3, $4, $5, $6) RETURNING {CODE_COLUMNS}",
        pool_id,
        seq,
        value,
        template["description"],
        template["expires_at"],
        now,
    )
    return code_of(row)


class Promotions(StoreCore):
    async def list_account_codes(
        self, *, account_id: int, after: CodeKey | None = None, offset: int = 0, limit: int
    ) -> list[Code]:
        """The account's codes ordered by (pool id, value): those after the cursor ``after`` when given,
        else from the start skipping ``offset``; at most ``limit``. One consistent snapshot per call."""
        return await self._driver.read(list_account_codes(account_id, after, offset, limit), paged=True)

    async def find_account_code(self, *, account_id: int, value: str) -> Code | None:
        """The code with this value in the account's pool of lowest id that holds it."""
        return await self._driver.read(find_account_code(account_id, value))

    async def duplicate_code(self, *, account_id: int, template_id: int, value: str) -> Code | None:
        """Add ``value`` as a new available code to the pool of the account's code ``template_id``, with the
        template's description and expiry, at the pool's tail. AlreadyExists when any pool of the account
        holds ``value``; None when the template is gone."""
        return await self._driver.write(duplicate_code(account_id, template_id, value, self.clock()))
