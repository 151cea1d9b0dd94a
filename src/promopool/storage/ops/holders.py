"""A code's holder named by a key: a profile of the account's ``default`` profile database, found or created
the same way by a redeem, an import that carries holders and a recipient-bound claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from promopool.domain.redemptions import DEFAULT_PROFILE_DATABASE
from promopool.storage.driver import SQL, Execute, Fetch, FetchVal, Op

PROFILE_SQL = (
    "SELECT pr.id FROM profiles pr JOIN profile_databases d ON d.id = pr.database_id"
    " WHERE d.account_id = $1 AND d.name = $2 AND pr.external_id = $3"
)


def profile_id(account_id: int, profile: str, create_at: datetime | None = None) -> Op[int | None]:
    """The profile named ``profile`` in the account's default profile database; created (at ``create_at``)
    when given a time and missing. A concurrent creator of the same profile makes the insert wait for its
    commit and then do nothing (PostgreSQL); the second read sees its row."""
    found = yield FetchVal(PROFILE_SQL, account_id, DEFAULT_PROFILE_DATABASE, profile)
    if found is not None or create_at is None:
        return None if found is None else int(found)
    database_id = yield from default_database(account_id, create_at)
    created = yield FetchVal(
        "INSERT INTO profiles (database_id, external_id, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (database_id, external_id) WHERE external_id IS NOT NULL DO NOTHING RETURNING id",
        database_id,
        profile,
        create_at,
    )
    if created is None:
        created = yield FetchVal(PROFILE_SQL, account_id, DEFAULT_PROFILE_DATABASE, profile)
    return int(created)


def default_database(account_id: int, create_at: datetime) -> Op[int]:
    """The id of the account's default profile database, created when missing."""
    yield Execute(
        "INSERT INTO profile_databases (account_id, name, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, name) DO NOTHING",
        account_id,
        DEFAULT_PROFILE_DATABASE,
        create_at,
    )
    database_id = yield FetchVal(
        "SELECT id FROM profile_databases WHERE account_id = $1 AND name = $2",
        account_id,
        DEFAULT_PROFILE_DATABASE,
    )
    return int(database_id)


# In the order given (callers sort the keys): two transactions creating overlapping profiles wait for each
# other in one order, never crosswise.
CREATE_PROFILES = SQL(
    postgres="INSERT INTO profiles (database_id, external_id, created_at)"
    " SELECT $1, key, $3 FROM unnest($2::text[]) WITH ORDINALITY AS k(key, n) ORDER BY n"
    " ON CONFLICT (database_id, external_id) WHERE external_id IS NOT NULL DO NOTHING",
    sqlite="INSERT INTO profiles (database_id, external_id, created_at)"
    " SELECT $1, value, $3 FROM json_each($2) WHERE true"
    " ON CONFLICT (database_id, external_id) WHERE external_id IS NOT NULL DO NOTHING",
)


def profile_ids(account_id: int, profiles: Sequence[str], create_at: datetime) -> Op[dict[str, int]]:
    """``profile_id`` for many keys at once, each found or created: the ids by key. Give the keys sorted."""
    found = yield from _profiles_named(account_id, profiles)
    missing = [key for key in profiles if key not in found]
    if not missing:  # a retry: every holder exists already
        return found
    database_id = yield from default_database(account_id, create_at)
    yield Execute(CREATE_PROFILES, database_id, missing, create_at)
    return (yield from _profiles_named(account_id, profiles))


def _profiles_named(account_id: int, profiles: Sequence[str]) -> Op[dict[str, int]]:
    rows = yield Fetch(
        "SELECT pr.id, pr.external_id FROM profiles pr JOIN profile_databases d ON d.id = pr.database_id"
        " WHERE d.account_id = $1 AND d.name = $2 AND pr.external_id = ANY($3::text[])",
        account_id,
        DEFAULT_PROFILE_DATABASE,
        list(profiles),
    )
    return {row["external_id"]: int(row["id"]) for row in rows}
