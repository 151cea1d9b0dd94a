"""Rows to domain objects, once for both engines: a row is read by column name (asyncpg.Record and
sqlite3.Row both allow it), and each engine's types are accepted (SQLite keeps timestamps as ISO-8601 text
and booleans as 0/1)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from promopool.domain import (
    Account,
    ApiKeyInfo,
    Code,
    CodeState,
    Lease,
    LeaseState,
    Pool,
    PoolCounts,
    PoolSettings,
    Profile,
    Redemption,
)
from promopool.domain.alerts import Delivery, DeliveryState
from promopool.domain.jobs import Job, JobKind, JobState
from promopool.domain.normalization import Normalization

ACCOUNT_COLUMNS = "id, name, public_key, created_at"
API_KEY_COLUMNS = "id, name, read_only, key_hash, created_at, last_used_at"
POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at, case_insensitive, ignore_separators, holder_only,"
    " fallback_code, fallback_pool_id, valid_for_seconds, fallback_since"
)
CODE_COLUMNS = (
    "id, pool_id, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at"
)

Row = Any  # asyncpg.Record or sqlite3.Row


def qualified(columns: str, alias: str) -> str:
    """``columns`` read from the table ``alias``."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def at(value: datetime | str) -> datetime:
    """A timestamp column's value as a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def dt(value: datetime | str | None) -> datetime | None:
    """A nullable timestamp column's value."""
    return None if value is None else at(value)


def id_list(value: list[int] | str | None) -> list[int] | None:
    """An array of ids: PostgreSQL's bigint[], SQLite's JSON text (a list is bound as JSON there)."""
    if value is None or isinstance(value, list):
        return value
    ids: list[int] = json.loads(value)
    return ids


def account_of(row: Row, *, read_only: bool = False) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        public_key=row["public_key"],
        created_at=at(row["created_at"]),
        read_only=read_only,
    )


def api_key_of(row: Row, *, prefix: str = "") -> ApiKeyInfo:
    """A key's row, its columns named ``prefix`` + column where they would clash with another table's (read
    beside its account's)."""
    return ApiKeyInfo(
        id=row[prefix + "id"],
        name=row[prefix + "name"],
        read_only=bool(row["read_only"]),
        fingerprint=row["key_hash"][:12],
        created_at=at(row[prefix + "created_at"]),
        last_used_at=dt(row["last_used_at"]),
    )


def pool_of(row: Row) -> Pool:
    return Pool(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        settings=PoolSettings(
            max_uses=row["max_uses"],
            per_profile_limit=row["per_profile_limit"],
            expires_at=dt(row["expires_at"]),
            public_fetch=bool(row["public_fetch"]),
            case_insensitive=bool(row["case_insensitive"]),
            ignore_separators=bool(row["ignore_separators"]),
            holder_only=bool(row["holder_only"]),
            fallback_code=row["fallback_code"],
            fallback_pool_id=row["fallback_pool_id"],
            valid_for_seconds=row["valid_for_seconds"],
        ),
        counts=PoolCounts(available=row["n_available"], issued=row["n_issued"], redeemed=row["n_redeemed"]),
        created_at=at(row["created_at"]),
        fallback_since=dt(row["fallback_since"]),
    )


def code_of(row: Row) -> Code:
    return Code(
        id=row["id"],
        pool_id=row["pool_id"],
        value=row["value"],
        state=CodeState(row["state"]),
        description=row["description"],
        usage_count=row["usage_count"],
        expires_at=dt(row["expires_at"]),
        issued_at=dt(row["issued_at"]),
        profile_id=row["profile_id"],
        created_at=dt(row["created_at"]),
    )


def normalization_of(row: Row) -> Normalization:
    """A pool's matching rules from its ``case_insensitive`` and ``ignore_separators`` columns."""
    return Normalization(bool(row["case_insensitive"]), bool(row["ignore_separators"]))


LEASE_COLUMNS = "id, code_id, state, expires_at, created_at, ended_at"


def lease_of(row: Row) -> Lease:
    return Lease(
        id=row["id"],
        code_id=row["code_id"],
        state=LeaseState(row["state"]),
        expires_at=at(row["expires_at"]),
        created_at=at(row["created_at"]),
        ended_at=dt(row["ended_at"]),
    )


PROFILE_COLUMNS = "id, database_id, external_id, email, phone, custom"


def profile_of(row: Row) -> Profile:
    custom = row["custom"]  # a dict from PostgreSQL's jsonb, JSON text from SQLite
    custom = json.loads(custom) if isinstance(custom, str) else custom
    return Profile(
        id=row["id"],
        database_id=row["database_id"],
        external_id=row["external_id"],
        email=row["email"],
        phone=row["phone"],
        custom={str(k): str(v) for k, v in custom.items()},
    )


def redemption_of(row: Row) -> Redemption:
    """A redemption row read with its code's value and pool and its profile's key (``ops/redemptions.py``)."""
    amount, metadata = row["amount"], row["metadata"]  # SQLite keeps both as text
    return Redemption(
        id=row["id"],
        code_id=row["code_id"],
        pool_id=row["pool_id"],
        code=row["code"],
        created_at=at(row["created_at"]),
        profile_id=row["profile_id"],
        profile=row["profile"],
        order_ref=row["order_ref"],
        amount=None if amount is None else Decimal(amount),
        metadata=json.loads(metadata) if isinstance(metadata, str) else metadata,
        rolled_back_at=dt(row["rolled_back_at"]),
    )


DELIVERY_COLUMNS = (
    "id, account_id, pool_id, event, url, data, state, attempts, next_attempt_at, last_attempt_at,"
    " last_status, last_error, created_at, delivered_at"
)


def delivery_of(row: Row, secret: str | None = None) -> Delivery:
    data = row["data"]
    return Delivery(
        id=row["id"],
        account_id=row["account_id"],
        pool_id=row["pool_id"],
        event=row["event"],
        url=row["url"],
        data=json.loads(data) if isinstance(data, str) else data,  # SQLite keeps JSON as text
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=dt(row["next_attempt_at"]),
        last_attempt_at=dt(row["last_attempt_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        created_at=at(row["created_at"]),
        delivered_at=dt(row["delivered_at"]),
        secret=secret,
    )


JOB_COLUMNS = (
    "id, account_id, kind, pool_id, total, done, state, created_at, updated_at, finished_at, error, params"
)


def job_of(row: Row) -> Job:
    params = row["params"]
    return Job(
        id=row["id"],
        account_id=row["account_id"],
        kind=JobKind(row["kind"]),
        pool_id=row["pool_id"],
        total=row["total"],
        done=row["done"],
        state=JobState(row["state"]),
        created_at=at(row["created_at"]),
        updated_at=at(row["updated_at"]),
        finished_at=dt(row["finished_at"]),
        error=row["error"],
        params=json.loads(params) if isinstance(params, str) else params,  # SQLite keeps JSON as text
    )
