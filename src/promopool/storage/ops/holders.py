"""A code's holder named by a key: a profile of the account's ``default`` profile database, found or created
the same way by a redeem, an import that carries holders and (later) a recipient-bound claim."""

from __future__ import annotations

from datetime import datetime

from promopool.domain.redemptions import DEFAULT_PROFILE_DATABASE
from promopool.storage.driver import Execute, FetchVal, Op

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
