"""An account's codes across its pools, and checksum credentials (sqlite engine; the SuperSaaS dialect)."""

from __future__ import annotations

import sqlite3
from typing import Any

from promopool.domain import Code
from promopool.domain.errors import AlreadyExists
from promopool.storage.base import CodeKey
from promopool.storage.sqlite.base import CODE_COLUMNS, SQLiteBase, code_of, ts
from promopool.storage.sqlite.lookup import same_code_in_pool

# The account's pools from a given id on, with their exact code counts (kept in the pool row).
ACCOUNT_POOLS = (
    "SELECT id, n_available + n_issued + n_redeemed FROM pools WHERE account_id = ? AND id >= ? ORDER BY id"
)
IN_ACCOUNT = "pool_id IN (SELECT id FROM pools WHERE account_id = ?)"


class SQLitePromotions(SQLiteBase):
    async def list_account_codes(
        self, *, account_id: int, after: CodeKey | None = None, offset: int = 0, limit: int
    ) -> list[Code]:
        first_pool, after_value = after if after is not None else (0, None)

        def op(conn: sqlite3.Connection) -> list[Code]:
            found: list[Code] = []
            skip = offset if after is None else 0
            conn.execute("BEGIN")  # one snapshot: the counters and the rows agree
            try:
                for pool_id, total in conn.execute(ACCOUNT_POOLS, (account_id, first_pool)).fetchall():
                    if len(found) >= limit:
                        break
                    want = limit - len(found)
                    sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = ?"
                    params: list[Any] = [pool_id]
                    if pool_id == first_pool and after_value is not None:
                        sql += " AND value > ? ORDER BY value LIMIT ?"
                        params += [after_value, want]
                    elif total <= skip:  # a whole pool inside the offset, or an empty one: not read
                        skip -= total
                        continue
                    else:
                        sql += " ORDER BY value LIMIT ? OFFSET ?"
                        params += [want, skip]
                        skip = 0
                    found += [code_of(row) for row in conn.execute(sql, params)]
            finally:
                conn.execute("COMMIT")
            return found

        return await self._read(op)

    async def find_account_code(self, *, account_id: int, value: str) -> Code | None:
        sql = f"SELECT {CODE_COLUMNS} FROM codes WHERE value = ? AND {IN_ACCOUNT} ORDER BY pool_id LIMIT 1"
        row = await self._read(lambda conn: conn.execute(sql, (value, account_id)).fetchone())
        return None if row is None else code_of(row)

    async def duplicate_code(self, *, account_id: int, template_id: int, value: str) -> Code | None:
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Code | None:
            # The writer thread runs one write at a time, so nothing can slip in between these statements.
            template = conn.execute(
                f"SELECT pool_id, description, expires_at FROM codes WHERE id = ? AND {IN_ACCOUNT}",
                (template_id, account_id),
            ).fetchone()
            if template is None:
                return None
            taken = conn.execute(f"SELECT 1 FROM codes WHERE value = ? AND {IN_ACCOUNT}", (value, account_id))
            if taken.fetchone() is not None:
                raise AlreadyExists(f"promotion code {value!r} already exists", code=value)
            pool_id, description, expires_at = template
            if (same := same_code_in_pool(conn, pool_id, value)) is not None:  # the pool's normalization
                raise AlreadyExists(f"promotion code {value!r} already exists as {same!r}", code=value)
            (seq,) = conn.execute(
                "UPDATE pools SET last_seq = last_seq + 1, n_available = n_available + 1 WHERE id = ?"
                " RETURNING last_seq",
                (pool_id,),
            ).fetchone()
            row = conn.execute(
                "INSERT INTO codes (pool_id, seq, value, description, expires_at, created_at)"
                f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {CODE_COLUMNS}",
                (pool_id, seq, value, description, expires_at, now),
            ).fetchone()
            return code_of(row)

        return await self._write(op)

    async def set_key_checksum(self, *, key_hash: str, checksum_hash: str) -> None:
        await self._write(
            lambda conn: conn.execute(
                "INSERT OR REPLACE INTO api_key_checksums VALUES (?, ?)", (key_hash, checksum_hash)
            )
        )

    async def key_checksums(self, *, account_id: int) -> list[str]:
        sql = (
            "SELECT c.checksum_hash FROM api_key_checksums c JOIN api_keys k ON k.key_hash = c.key_hash"
            " WHERE k.account_id = ?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (account_id,)).fetchall())
        return [row[0] for row in rows]
