"""Profiles: profile databases, find-or-create by identity, attach and detach (postgres engine).

A find-or-create takes its profile database's row lock, so concurrent calls for one identity make one
profile. Attach and detach change a code's state: they take the pool's row first (``FOR UPDATE``), as claim
batches do, and attach without a value takes its code with the claim batch's own ``_take``.
"""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from promopool.domain import Code, Profile, ProfileDatabase
from promopool.domain.errors import (
    AlreadyExists,
    CodeNotFound,
    Conflict,
    PoolExhausted,
    PoolNotFound,
)
from promopool.domain.normalization import Normalization, new_values
from promopool.domain.profiles import Identity, Matching
from promopool.storage.postgres.base import CODE_COLUMNS, code_of
from promopool.storage.postgres.claims import PostgresClaims
from promopool.storage.postgres.lookup import stored_alike

PROFILE_COLUMNS = "id, database_id, external_id, email, phone, custom"


def profile_of(row: asyncpg.Record) -> Profile:
    custom = row["custom"]
    if isinstance(custom, str):
        custom = json.loads(custom)
    return Profile(
        id=row["id"],
        database_id=row["database_id"],
        external_id=row["external_id"],
        email=row["email"],
        phone=row["phone"],
        custom={str(k): str(v) for k, v in custom.items()},
    )


async def _find(conn: asyncpg.Connection, database_id: int, identity: Identity) -> Profile | None:
    if identity.matching is Matching.CUSTOM:
        where, args = "custom ->> $2 = $3", [identity.field_name, identity.key]
    else:
        column = {Matching.EMAIL: "email", Matching.PHONE: "phone", Matching.PROFILE_ID: "external_id"}
        where, args = f"{column[identity.matching]} = $2", [identity.key]
    row = await conn.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE database_id = $1 AND {where} ORDER BY id LIMIT 1",
        database_id,
        *args,
    )
    return None if row is None else profile_of(row)


async def _ensure(
    conn: asyncpg.Connection, database_id: int, identity: Identity, external_id: str, at: datetime
) -> Profile:
    # The database's row serializes the find-or-create of its profiles: one profile per new identity.
    await conn.execute("SELECT 1 FROM profile_databases WHERE id = $1 FOR UPDATE", database_id)
    found = await _find(conn, database_id, identity)
    if found is not None:
        return found
    external = identity.external_id or external_id
    try:
        async with conn.transaction():
            row = await conn.fetchrow(
                "INSERT INTO profiles (database_id, external_id, email, phone, custom, created_at)"
                f" VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING {PROFILE_COLUMNS}",
                database_id,
                external,
                identity.email,
                identity.phone,
                identity.custom,
                at,
            )
    except asyncpg.UniqueViolationError:
        raise Conflict(f"profile_id {external!r} belongs to another profile") from None
    return profile_of(row)


async def _pool(conn: asyncpg.Connection, account_id: int, pool_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT next_seq, max_uses, case_insensitive, ignore_separators FROM pools"
        " WHERE id = $1 AND account_id = $2 FOR UPDATE",
        pool_id,
        account_id,
    )
    if row is None:
        raise PoolNotFound(pool_id)
    return row


async def _code(conn: asyncpg.Connection, pool_id: int, value: str) -> Code | None:
    row = await conn.fetchrow(
        f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = $1 AND value = $2 FOR UPDATE", pool_id, value
    )
    return None if row is None else code_of(row)


def _missing(value: str, pool_id: int) -> CodeNotFound:
    return CodeNotFound(f"code {value!r} not found in loyalty program {pool_id}", pool_id=pool_id)


async def _to_tail(conn: asyncpg.Connection, pool_id: int, code_id: int) -> None:
    seq = await conn.fetchval(
        "UPDATE pools SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", pool_id
    )
    await conn.execute("UPDATE codes SET seq = $1 WHERE id = $2", seq, code_id)


async def _set_profile(conn: asyncpg.Connection, code_id: int, profile_id: int | None) -> Code:
    row = await conn.fetchrow(
        f"UPDATE codes SET profile_id = $1 WHERE id = $2 RETURNING {CODE_COLUMNS}", profile_id, code_id
    )
    return code_of(row)


class PostgresProfiles(PostgresClaims):
    async def create_profile_database(self, *, account_id: int, name: str) -> ProfileDatabase:
        row = await self._fetchrow(
            "INSERT INTO profile_databases (account_id, name, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
            account_id,
            name,
            self.clock(),
        )
        if row is None:
            raise AlreadyExists(f"profile database {name!r} exists already", name=name)
        return ProfileDatabase(id=row["id"], account_id=account_id, name=name)

    async def get_profile_database(self, *, account_id: int, database_id: int) -> ProfileDatabase | None:
        row = await self._fetchrow(
            "SELECT id, account_id, name FROM profile_databases WHERE id = $1 AND account_id = $2",
            database_id,
            account_id,
        )
        return (
            None
            if row is None
            else ProfileDatabase(id=row["id"], account_id=row["account_id"], name=row["name"])
        )

    async def find_profile(self, *, database_id: int, identity: Identity) -> Profile | None:
        async with self._conn() as conn:
            return await _find(conn, database_id, identity)

    async def ensure_profile(self, *, database_id: int, identity: Identity, external_id: str) -> Profile:
        async with self._tx() as conn:
            return await _ensure(conn, database_id, identity, external_id, self.clock())

    async def get_profile(self, *, profile_id: int) -> Profile | None:
        row = await self._fetchrow(f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1", profile_id)
        return None if row is None else profile_of(row)

    async def attach_code(
        self,
        *,
        account_id: int,
        pool_id: int,
        value: str | None,
        database_id: int,
        identity: Identity,
        external_id: str,
    ) -> Code:
        now = self.clock()
        async with self._tx() as conn:
            # The pool's row first, as every claim takes it; then the profile database's (no transaction
            # takes the two the other way round). In this transaction, a refused attach creates no profile.
            pool = await _pool(conn, account_id, pool_id)
            profile_id = (await _ensure(conn, database_id, identity, external_id, now)).id
            if value is None:
                taken = await self._take(conn, pool_id, pool["next_seq"], 1, now)
                if not taken:
                    raise PoolExhausted(pool_id)
                return await _set_profile(conn, taken[0].id, profile_id)
            code = await _code(conn, pool_id, value)
            if code is None:
                normalization = Normalization(pool["case_insensitive"], pool["ignore_separators"])
                if normalization.folds and not new_values(
                    [value], await stored_alike(conn, pool_id, [value]), normalization
                ):
                    raise Conflict(f"code {value!r} equals another code of the loyalty program")
                seq = await conn.fetchval(
                    "UPDATE pools SET last_seq = last_seq + 1, n_issued = n_issued + 1 WHERE id = $1"
                    " RETURNING last_seq",
                    pool_id,
                )
                row = await conn.fetchrow(
                    "INSERT INTO codes (pool_id, seq, value, state, issued_at, profile_id, created_at)"
                    f" VALUES ($1, $2, $3, 'issued', $4, $5, $4) RETURNING {CODE_COLUMNS}",
                    pool_id,
                    seq,
                    value,
                    now,
                    profile_id,
                )
                return code_of(row)
            if code.profile_id is not None:
                if pool["max_uses"] == 1 or code.profile_id != profile_id:
                    raise Conflict(f"code {value!r} is attached already")
                return code
            issued = await conn.fetchval(
                "UPDATE codes SET state = 'issued', issued_at = $1 WHERE id = $2 AND state = 'available'"
                " RETURNING id",
                now,
                code.id,
            )
            if issued is not None:
                await conn.execute(
                    "UPDATE pools SET n_available = n_available - 1, n_issued = n_issued + 1 WHERE id = $1",
                    pool_id,
                )
            return await _set_profile(conn, code.id, profile_id)

    async def detach_code(self, *, account_id: int, pool_id: int, value: str, profile_id: int | None) -> Code:
        async with self._tx() as conn:
            await _pool(conn, account_id, pool_id)
            code = await _code(conn, pool_id, value)
            if code is None:
                raise _missing(value, pool_id)
            if code.profile_id is None or (profile_id is not None and code.profile_id != profile_id):
                raise Conflict(f"code {value!r} is not attached to this profile")
            if code.state == "issued" and code.usage_count == 0:
                await conn.execute(
                    "UPDATE codes SET state = 'available', issued_at = NULL WHERE id = $1", code.id
                )
                await conn.execute(
                    "UPDATE pools SET n_available = n_available + 1, n_issued = n_issued - 1 WHERE id = $1",
                    pool_id,
                )
                await _to_tail(conn, pool_id, code.id)
            return await _set_profile(conn, code.id, None)

    async def set_code_expiry(
        self, *, account_id: int, pool_id: int, value: str, expires_at: datetime | None
    ) -> Code:
        async with self._tx() as conn:
            await _pool(conn, account_id, pool_id)
            code = await _code(conn, pool_id, value)
            if code is None:
                raise _missing(value, pool_id)
            if code.state == "available":
                await _to_tail(conn, pool_id, code.id)
            row = await conn.fetchrow(
                f"UPDATE codes SET expires_at = $1 WHERE id = $2 RETURNING {CODE_COLUMNS}",
                expires_at,
                code.id,
            )
            return code_of(row)
