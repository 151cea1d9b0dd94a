"""Profiles: profile databases, find-or-create by identity, codes attached to profiles, a code's expiry.

A find-or-create takes its profile database's row, so concurrent calls for one identity make one profile.
Attach, detach and a new expiry change a code: they take the pool's row first (the lock order of
``lock_pool``), and attach without a value takes its code as a claim does.
"""

from __future__ import annotations

import json
from datetime import datetime

from promopool.domain import Code, Profile, ProfileDatabase
from promopool.domain.errors import AlreadyExists, CodeNotFound, Conflict, PoolExhausted, PoolNotFound
from promopool.domain.profiles import Identity, Matching
from promopool.storage.core import StoreCore
from promopool.storage.driver import SQL, Execute, FetchRow, FetchVal, Op, UniqueViolation
from promopool.storage.ops.bindings import unbind
from promopool.storage.ops.claims import take
from promopool.storage.ops.codes import code_where
from promopool.storage.ops.lookup import same_code
from promopool.storage.ops.pools import locked_pool
from promopool.storage.rows import CODE_COLUMNS, PROFILE_COLUMNS, Row, code_of, normalization_of, profile_of

FIND = f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE database_id = $1 AND {{}} ORDER BY id LIMIT 1"
COLUMN = {Matching.EMAIL: "email", Matching.PHONE: "phone", Matching.PROFILE_ID: "external_id"}
# SQLite's ->> would read a field name holding a dot as a path: the name is quoted into one.
BY_CUSTOM = SQL(
    postgres=FIND.format("custom ->> $2 = $3"),
    sqlite=FIND.format("""json_extract(custom, '$."' || $2 || '"') = $3"""),
)


def find_profile(database_id: int, identity: Identity) -> Op[Profile | None]:
    if identity.matching is Matching.CUSTOM:
        row = yield FetchRow(BY_CUSTOM, database_id, identity.field_name, identity.key)
    else:
        row = yield FetchRow(FIND.format(f"{COLUMN[identity.matching]} = $2"), database_id, identity.key)
    return None if row is None else profile_of(row)


def ensure_profile(database_id: int, identity: Identity, external_id: str, now: datetime) -> Op[Profile]:
    # The database's row serializes the find-or-create of its profiles: one profile per new identity.
    yield Execute("SELECT 1 FROM profile_databases WHERE id = $1 FOR UPDATE", database_id)
    found = yield from find_profile(database_id, identity)
    if found is not None:
        return found
    external = identity.external_id or external_id
    try:
        row = yield FetchRow(
            "INSERT INTO profiles (database_id, external_id, email, phone, custom, created_at)"
            f" VALUES ($1, $2, $3, $4, $5::text::jsonb, $6) RETURNING {PROFILE_COLUMNS}",
            database_id,
            external,
            identity.email,
            identity.phone,
            json.dumps(identity.custom),
            now,
        )
    except UniqueViolation:
        raise Conflict(f"profile_id {external!r} belongs to another profile") from None
    return profile_of(row)


# What attach needs of the pool it locks: its cursor, max_uses and normalization.
LOCKED = "next_seq, max_uses, case_insensitive, ignore_separators"


def lock_pool_row(account_id: int, pool_id: int) -> Op[Row]:
    row = yield from locked_pool(
        pool_id, account_id, "next_seq, max_uses, case_insensitive, ignore_separators"
    )
    if row is None:
        raise PoolNotFound(pool_id)
    return row


def code_by_value(pool_id: int, value: str) -> Op[Code | None]:
    return (yield from code_where("pool_id = $1 AND value = $2 FOR UPDATE", pool_id, value))


def held_code(account_id: int, pool_id: int, value: str) -> Op[Code]:
    """The code, its pool's row taken first; CodeNotFound when the pool lacks it."""
    yield from lock_pool_row(account_id, pool_id)
    code = yield from code_by_value(pool_id, value)
    if code is None:
        raise CodeNotFound(f"code {value!r} not found in loyalty program {pool_id}", pool_id=pool_id)
    return code


def to_tail(pool_id: int, code_id: int) -> Op[None]:
    seq = yield FetchVal("UPDATE pools SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq", pool_id)
    yield Execute("UPDATE codes SET seq = $1 WHERE id = $2", seq, code_id)


def set_profile(code_id: int, profile_id: int | None) -> Op[Code]:
    row = yield FetchRow(
        f"UPDATE codes SET profile_id = $1 WHERE id = $2 RETURNING {CODE_COLUMNS}", profile_id, code_id
    )
    return code_of(row)


def attach_code(
    account_id: int,
    pool_id: int,
    value: str | None,
    database_id: int,
    identity: Identity,
    external_id: str,
    now: datetime,
) -> Op[Code]:
    # The pool's row first, as every claim takes it; then the profile database's (no transaction takes the
    # two the other way round). In this transaction, a refused attach creates no profile.
    pool = yield from lock_pool_row(account_id, pool_id)
    profile_id = (yield from ensure_profile(database_id, identity, external_id, now)).id
    if value is None:
        taken = yield from take(pool_id, pool["next_seq"], 1, now)
        if not taken:
            raise PoolExhausted(pool_id)
        return (yield from set_profile(taken[0].id, profile_id))
    code = yield from code_by_value(pool_id, value)
    if code is None:
        normalization = normalization_of(pool)
        if normalization.folds and (yield from same_code(pool_id, value, normalization)) is not None:
            raise Conflict(f"code {value!r} equals another code of the loyalty program")
        seq = yield FetchVal(
            "UPDATE pools SET last_seq = last_seq + 1, n_issued = n_issued + 1 WHERE id = $1"
            " RETURNING last_seq",
            pool_id,
        )
        row = yield FetchRow(
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
    issued = yield FetchVal(
        "UPDATE codes SET state = 'issued', issued_at = $1 WHERE id = $2 AND state = 'available'"
        " RETURNING id",
        now,
        code.id,
    )
    if issued is not None:
        yield Execute(
            "UPDATE pools SET n_available = n_available - 1, n_issued = n_issued + 1 WHERE id = $1", pool_id
        )
    return (yield from set_profile(code.id, profile_id))


def detach_code(account_id: int, pool_id: int, value: str, profile_id: int | None) -> Op[Code]:
    code = yield from held_code(account_id, pool_id, value)
    if code.profile_id is None or (profile_id is not None and code.profile_id != profile_id):
        raise Conflict(f"code {value!r} is not attached to this profile")
    if code.state == "issued" and code.usage_count == 0:  # unused: claimable again, at the pool's tail
        yield Execute("UPDATE codes SET state = 'available', issued_at = NULL WHERE id = $1", code.id)
        yield Execute(
            "UPDATE pools SET n_available = n_available + 1, n_issued = n_issued - 1 WHERE id = $1", pool_id
        )
        yield from to_tail(pool_id, code.id)
    yield from unbind(pool_id, [code.id])  # no longer its recipient's either
    return (yield from set_profile(code.id, None))


def set_code_expiry(account_id: int, pool_id: int, value: str, expires_at: datetime | None) -> Op[Code]:
    code = yield from held_code(account_id, pool_id, value)
    if code.state == "available":
        yield from to_tail(pool_id, code.id)
    row = yield FetchRow(
        f"UPDATE codes SET expires_at = $1 WHERE id = $2 RETURNING {CODE_COLUMNS}", expires_at, code.id
    )
    return code_of(row)


def create_profile_database(account_id: int, name: str, now: datetime) -> Op[ProfileDatabase]:
    database_id = yield FetchVal(
        "INSERT INTO profile_databases (account_id, name, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, name) DO NOTHING RETURNING id",
        account_id,
        name,
        now,
    )
    if database_id is None:
        raise AlreadyExists(f"profile database {name!r} exists already", name=name)
    return ProfileDatabase(id=database_id, account_id=account_id, name=name)


def get_profile_database(account_id: int, database_id: int) -> Op[ProfileDatabase | None]:
    name = yield FetchVal(
        "SELECT name FROM profile_databases WHERE id = $1 AND account_id = $2", database_id, account_id
    )
    return None if name is None else ProfileDatabase(id=database_id, account_id=account_id, name=name)


def get_profile(profile_id: int) -> Op[Profile | None]:
    row = yield FetchRow(f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1", profile_id)
    return None if row is None else profile_of(row)


class Profiles(StoreCore):
    """Codes are named by their exact value in one pool of the account (PoolNotFound otherwise)."""

    async def create_profile_database(self, *, account_id: int, name: str) -> ProfileDatabase:
        """A new profile database; AlreadyExists when the account has one of that name."""
        return await self._driver.write(create_profile_database(account_id, name, self.clock()))

    async def get_profile_database(self, *, account_id: int, database_id: int) -> ProfileDatabase | None:
        return await self._driver.read(get_profile_database(account_id, database_id))

    async def find_profile(self, *, database_id: int, identity: Identity) -> Profile | None:
        """The profile of the database whose matching identifier equals the identity's (the oldest if
        several)."""
        return await self._driver.read(find_profile(database_id, identity))

    async def ensure_profile(self, *, database_id: int, identity: Identity, external_id: str) -> Profile:
        """The matching profile, or a new one with every identifier of ``identity`` (``external_id`` when it
        has none), atomically: concurrent calls for one identity get one profile. Conflict when the new
        profile's external id is another profile's."""
        return await self._driver.write(ensure_profile(database_id, identity, external_id, self.clock()))

    async def get_profile(self, *, profile_id: int) -> Profile | None:
        return await self._driver.read(get_profile(profile_id))

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
        """Attach ``value`` (imported first when the pool lacks it) or, without a value, the pool's next
        free code (the claim path, under the pool's lock) to the profile of ``database_id`` matching
        ``identity``, created as ``ensure_profile`` does in the same transaction (so a refused attach
        creates no profile). Conflict when the code is attached already (to anyone, in a single-use pool;
        to another profile otherwise) or the new profile's external id is taken; PoolExhausted when no code
        is free."""
        return await self._driver.write(
            attach_code(account_id, pool_id, value, database_id, identity, external_id, self.clock())
        )

    async def detach_code(self, *, account_id: int, pool_id: int, value: str, profile_id: int | None) -> Code:
        """Detach the code (from ``profile_id`` when given); an unused code goes back to the pool's tail.
        CodeNotFound when missing, Conflict when not attached (to that profile)."""
        return await self._driver.write(detach_code(account_id, pool_id, value, profile_id))

    async def set_code_expiry(
        self, *, account_id: int, pool_id: int, value: str, expires_at: datetime | None
    ) -> Code:
        """Set the code's expiry; a free code moves to the pool's tail (a later expiry makes it claimable
        again). CodeNotFound when missing."""
        return await self._driver.write(set_code_expiry(account_id, pool_id, value, expires_at))
