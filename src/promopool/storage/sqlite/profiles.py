"""Profiles: profile databases, find-or-create by identity, attach and detach (sqlite engine).

Writes run one at a time in the writer thread: a find-or-create and an attach are atomic by construction;
they are still written as conditional statements, as on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

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
from promopool.storage.sqlite.base import CODE_COLUMNS, code_of, ts
from promopool.storage.sqlite.claims import SQLiteClaims
from promopool.storage.sqlite.lookup import stored_alike

PROFILE_COLUMNS = "id, database_id, external_id, email, phone, custom"


def profile_of(row: sqlite3.Row) -> Profile:
    return Profile(
        id=row[0],
        database_id=row[1],
        external_id=row[2],
        email=row[3],
        phone=row[4],
        custom=json.loads(row[5]),
    )


def _find(conn: sqlite3.Connection, database_id: int, identity: Identity) -> Profile | None:
    if identity.matching is Matching.CUSTOM:
        where, args = "json_extract(custom, ?) = ?", [f'$."{identity.field_name}"', identity.key]
    else:
        column = {Matching.EMAIL: "email", Matching.PHONE: "phone", Matching.PROFILE_ID: "external_id"}
        where, args = f"{column[identity.matching]} = ?", [identity.key]
    row = conn.execute(
        f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE database_id = ? AND {where} ORDER BY id LIMIT 1",
        (database_id, *args),
    ).fetchone()
    return None if row is None else profile_of(row)


def _ensure(
    conn: sqlite3.Connection, database_id: int, identity: Identity, external_id: str, at: str
) -> Profile:
    found = _find(conn, database_id, identity)
    if found is not None:
        return found
    external = identity.external_id or external_id
    try:
        row = conn.execute(
            "INSERT INTO profiles (database_id, external_id, email, phone, custom, created_at)"
            f" VALUES (?, ?, ?, ?, ?, ?) RETURNING {PROFILE_COLUMNS}",
            (database_id, external, identity.email, identity.phone, json.dumps(identity.custom), at),
        ).fetchone()
    except sqlite3.IntegrityError:
        raise Conflict(f"profile_id {external!r} belongs to another profile") from None
    return profile_of(row)


def _pool(conn: sqlite3.Connection, account_id: int, pool_id: int) -> sqlite3.Row:
    row: sqlite3.Row | None = conn.execute(
        "SELECT next_seq, max_uses, case_insensitive, ignore_separators FROM pools"
        " WHERE id = ? AND account_id = ?",
        (pool_id, account_id),
    ).fetchone()
    if row is None:
        raise PoolNotFound(pool_id)
    return row


def _code(conn: sqlite3.Connection, pool_id: int, value: str) -> Code | None:
    row = conn.execute(
        f"SELECT {CODE_COLUMNS} FROM codes WHERE pool_id = ? AND value = ?", (pool_id, value)
    ).fetchone()
    return None if row is None else code_of(row)


def _missing(value: str, pool_id: int) -> CodeNotFound:
    return CodeNotFound(f"code {value!r} not found in loyalty program {pool_id}", pool_id=pool_id)


def _to_tail(conn: sqlite3.Connection, pool_id: int, code_id: int) -> None:
    seq = conn.execute(
        "UPDATE pools SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (pool_id,)
    ).fetchone()[0]
    conn.execute("UPDATE codes SET seq = ? WHERE id = ?", (seq, code_id))


class SQLiteProfiles(SQLiteClaims):
    async def create_profile_database(self, *, account_id: int, name: str) -> ProfileDatabase:
        at = ts(self.clock())

        def op(conn: sqlite3.Connection) -> ProfileDatabase:
            row = conn.execute(
                "INSERT INTO profile_databases (account_id, name, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
                (account_id, name, at),
            ).fetchone()
            if row is None:
                raise AlreadyExists(f"profile database {name!r} exists already", name=name)
            return ProfileDatabase(id=row[0], account_id=account_id, name=name)

        return await self._write(op)

    async def get_profile_database(self, *, account_id: int, database_id: int) -> ProfileDatabase | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT id, account_id, name FROM profile_databases WHERE id = ? AND account_id = ?",
                (database_id, account_id),
            ).fetchone()
        )
        return None if row is None else ProfileDatabase(id=row[0], account_id=row[1], name=row[2])

    async def find_profile(self, *, database_id: int, identity: Identity) -> Profile | None:
        return await self._read(lambda conn: _find(conn, database_id, identity))

    async def ensure_profile(self, *, database_id: int, identity: Identity, external_id: str) -> Profile:
        at = ts(self.clock())
        return await self._write(lambda conn: _ensure(conn, database_id, identity, external_id, at))

    async def get_profile(self, *, profile_id: int) -> Profile | None:
        row = await self._read(
            lambda conn: conn.execute(
                f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = ?", (profile_id,)
            ).fetchone()
        )
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
        now = ts(self.clock())

        def op(conn: sqlite3.Connection) -> Code:
            pool = _pool(conn, account_id, pool_id)
            # In the attach's savepoint: when the attach is refused, the new profile goes with it.
            profile_id = _ensure(conn, database_id, identity, external_id, now).id
            if value is None:
                taken = self._take(conn, pool_id, pool[0], 1, now)
                if not taken:
                    raise PoolExhausted(pool_id)
                return code_of(
                    conn.execute(
                        f"UPDATE codes SET profile_id = ? WHERE id = ? RETURNING {CODE_COLUMNS}",
                        (profile_id, taken[0].id),
                    ).fetchone()
                )
            code = _code(conn, pool_id, value)
            if code is None:
                normalization = Normalization(bool(pool[2]), bool(pool[3]))
                if normalization.folds and not new_values(
                    [value], stored_alike(conn, pool_id, [value]), normalization
                ):
                    raise Conflict(f"code {value!r} equals another code of the loyalty program")
                seq = conn.execute(
                    "UPDATE pools SET last_seq = last_seq + 1, n_issued = n_issued + 1 WHERE id = ?"
                    " RETURNING last_seq",
                    (pool_id,),
                ).fetchone()[0]
                return code_of(
                    conn.execute(
                        "INSERT INTO codes (pool_id, seq, value, state, issued_at, profile_id, created_at)"
                        f" VALUES (?, ?, ?, 'issued', ?, ?, ?) RETURNING {CODE_COLUMNS}",
                        (pool_id, seq, value, now, profile_id, now),
                    ).fetchone()
                )
            if code.profile_id is not None:
                if pool[1] == 1 or code.profile_id != profile_id:
                    raise Conflict(f"code {value!r} is attached already")
                return code
            row = conn.execute(
                "UPDATE codes SET state = 'issued', issued_at = ? WHERE id = ? AND state = 'available'"
                " RETURNING id",
                (now, code.id),
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE pools SET n_available = n_available - 1, n_issued = n_issued + 1 WHERE id = ?",
                    (pool_id,),
                )
            return code_of(
                conn.execute(
                    f"UPDATE codes SET profile_id = ? WHERE id = ? RETURNING {CODE_COLUMNS}",
                    (profile_id, code.id),
                ).fetchone()
            )

        return await self._write(op)

    async def detach_code(self, *, account_id: int, pool_id: int, value: str, profile_id: int | None) -> Code:
        def op(conn: sqlite3.Connection) -> Code:
            _pool(conn, account_id, pool_id)
            code = _code(conn, pool_id, value)
            if code is None:
                raise _missing(value, pool_id)
            if code.profile_id is None or (profile_id is not None and code.profile_id != profile_id):
                raise Conflict(f"code {value!r} is not attached to this profile")
            if code.state == "issued" and code.usage_count == 0:
                # Unused: claimable again, at the pool's tail.
                conn.execute(
                    "UPDATE codes SET state = 'available', issued_at = NULL WHERE id = ?", (code.id,)
                )
                conn.execute(
                    "UPDATE pools SET n_available = n_available + 1, n_issued = n_issued - 1 WHERE id = ?",
                    (pool_id,),
                )
                _to_tail(conn, pool_id, code.id)
            return code_of(
                conn.execute(
                    f"UPDATE codes SET profile_id = NULL WHERE id = ? RETURNING {CODE_COLUMNS}", (code.id,)
                ).fetchone()
            )

        return await self._write(op)

    async def set_code_expiry(
        self, *, account_id: int, pool_id: int, value: str, expires_at: datetime | None
    ) -> Code:
        at = None if expires_at is None else ts(expires_at)

        def op(conn: sqlite3.Connection) -> Code:
            _pool(conn, account_id, pool_id)
            code = _code(conn, pool_id, value)
            if code is None:
                raise _missing(value, pool_id)
            if code.state == "available":
                _to_tail(conn, pool_id, code.id)
            return code_of(
                conn.execute(
                    f"UPDATE codes SET expires_at = ? WHERE id = ? RETURNING {CODE_COLUMNS}", (at, code.id)
                ).fetchone()
            )

        return await self._write(op)
