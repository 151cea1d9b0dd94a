"""An account's codes across its pools, and checksum credentials (postgres engine; the SuperSaaS dialect)."""

from __future__ import annotations

import asyncpg

from promopool.domain import Code
from promopool.domain.errors import AlreadyExists
from promopool.storage.base import CodeKey
from promopool.storage.postgres.base import CODE_COLUMNS, PostgresBase, code_of
from promopool.storage.postgres.lookup import same_code_in_pool

# The account's pools from a given id on, with their exact code counts (kept in the pool row).
ACCOUNT_POOLS = (
    "SELECT id, n_available + n_issued + n_redeemed AS total FROM pools"
    " WHERE account_id = $1 AND id >= $2 ORDER BY id"
)


def _in_account(param: str) -> str:
    return f"pool_id IN (SELECT id FROM pools WHERE account_id = {param})"


class PostgresPromotions(PostgresBase):
    async def list_account_codes(
        self, *, account_id: int, after: CodeKey | None = None, offset: int = 0, limit: int
    ) -> list[Code]:
        first_pool, after_value = after if after is not None else (0, None)
        found: list[Code] = []
        skip = offset if after is None else 0
        # One snapshot (the counters and the rows agree), walking the (pool_id, value) index.
        async with self._ordered_read() as conn:
            for pool in await conn.fetch(ACCOUNT_POOLS, account_id, first_pool):
                if len(found) >= limit:
                    break
                pool_id, total = pool["id"], pool["total"]
                want = limit - len(found)
                rows: list[asyncpg.Record]
                if pool_id == first_pool and after_value is not None:
                    rows = await conn.fetch(
                        f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 AND value > $2"
                        " ORDER BY value LIMIT $3",
                        pool_id,
                        after_value,
                        want,
                    )
                elif total <= skip:  # a whole pool inside the offset, or an empty one: not read
                    skip -= total
                    continue
                else:
                    rows = await conn.fetch(
                        f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1"
                        " ORDER BY value LIMIT $2 OFFSET $3",
                        pool_id,
                        want,
                        skip,
                    )
                    skip = 0
                found += [code_of(row) for row in rows]
        return found

    async def find_account_code(self, *, account_id: int, value: str) -> Code | None:
        row = await self._fetchrow(
            f"SELECT {CODE_COLUMNS} FROM codes WHERE value = $1 AND {_in_account('$2')}"
            " ORDER BY pool_id LIMIT 1",
            value,
            account_id,
        )
        return None if row is None else code_of(row)

    async def duplicate_code(self, *, account_id: int, template_id: int, value: str) -> Code | None:
        async with self._tx() as conn:
            # Duplicates into one account take turns, so two of them cannot both find the value free. (A key
            # share lock, which creating pools takes on the account row, does not conflict with this one.)
            await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", account_id)
            template = await conn.fetchrow(
                f"SELECT pool_id, description, expires_at FROM codes WHERE id = $1 AND {_in_account('$2')}",
                template_id,
                account_id,
            )
            if template is None:
                return None
            if await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM codes WHERE value = $1 AND {_in_account('$2')})",
                value,
                account_id,
            ):
                raise AlreadyExists(f"promotion code {value!r} already exists", code=value)
            seq = await conn.fetchval(
                "UPDATE pools SET last_seq = last_seq + 1, n_available = n_available + 1 WHERE id = $1"
                " RETURNING last_seq",
                template["pool_id"],
            )
            # Under the pool's row, which imports take too: a code equal under the pool's normalization.
            if (same := await same_code_in_pool(conn, template["pool_id"], value)) is not None:
                raise AlreadyExists(f"promotion code {value!r} already exists as {same!r}", code=value)
            # An import into the same pool may have added the value meanwhile: the unique key decides, and
            # raising rolls the counter back with the transaction.
            row = await conn.fetchrow(
                "INSERT INTO codes (pool_id, seq, value, description, expires_at, created_at)"
                f" VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {CODE_COLUMNS}",
                template["pool_id"],
                seq,
                value,
                template["description"],
                template["expires_at"],
                self.clock(),
            )
            if row is None:
                raise AlreadyExists(f"promotion code {value!r} already exists", code=value)
        return code_of(row)

    async def set_key_checksum(self, *, key_hash: str, checksum_hash: str) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO api_key_checksums VALUES ($1, $2)"
                " ON CONFLICT (key_hash) DO UPDATE SET checksum_hash = excluded.checksum_hash",
                key_hash,
                checksum_hash,
            )

    async def key_checksums(self, *, account_id: int) -> list[str]:
        rows = await self._fetch(
            "SELECT c.checksum_hash FROM api_key_checksums c JOIN api_keys k ON k.key_hash = c.key_hash"
            " WHERE k.account_id = $1",
            account_id,
        )
        return [row["checksum_hash"] for row in rows]
