"""Rows to domain objects, once for both engines: a row is read by column name (asyncpg.Record and
sqlite3.Row both allow it), and each engine's types are accepted (SQLite keeps timestamps as ISO-8601 text,
booleans as 0/1, JSON and numeric as text)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

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

T = TypeVar("T")
Row = Any  # asyncpg.Record or sqlite3.Row

ACCOUNT_COLUMNS = "id, name, public_key, created_at"
API_KEY_COLUMNS = "id, name, read_only, key_hash, created_at, last_used_at"
POOL_COLUMNS = (
    "id, account_id, name, max_uses, per_profile_limit, expires_at, public_fetch,"
    " n_available, n_issued, n_redeemed, created_at, case_insensitive, ignore_separators, holder_only,"
    " fallback_code, fallback_pool_id, valid_for_seconds, fallback_since"
)
# A pool's settings (domain.PoolSettings), each a column of its row.
POOL_SETTINGS = (
    "max_uses",
    "per_profile_limit",
    "expires_at",
    "public_fetch",
    "case_insensitive",
    "ignore_separators",
    "holder_only",
    "fallback_code",
    "fallback_pool_id",
    "valid_for_seconds",
)
CODE_COLUMNS = (
    "id, pool_id, value, state, description, usage_count, expires_at, issued_at, profile_id, created_at"
)
LEASE_COLUMNS = "id, code_id, state, expires_at, created_at, ended_at"
PROFILE_COLUMNS = "id, database_id, external_id, email, phone, custom"
DELIVERY_COLUMNS = (
    "id, account_id, pool_id, event, url, data, state, attempts, next_attempt_at, last_attempt_at,"
    " last_status, last_error, created_at, delivered_at"
)
JOB_COLUMNS = (
    "id, account_id, kind, pool_id, total, done, state, created_at, updated_at, finished_at, error, params"
)


def qualified(columns: str, alias: str) -> str:
    """``columns`` read from the table ``alias``."""
    return ", ".join(f"{alias}.{column.strip()}" for column in columns.split(","))


def at(value: datetime | str) -> datetime:
    """A timestamp column's value as a datetime."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def dt(value: datetime | str | None) -> datetime | None:
    """A nullable timestamp column's value."""
    return None if value is None else at(value)


def from_json(value: Any) -> Any:
    """A JSON column's value: PostgreSQL's jsonb decoded already, SQLite's text."""
    return json.loads(value) if isinstance(value, str) else value


def id_list(value: list[int] | str | None) -> list[int] | None:
    """An array of ids: PostgreSQL's bigint[], SQLite's JSON text (a list is bound as JSON there)."""
    ids: list[int] | None = from_json(value)
    return ids


def converter(cls: Callable[..., T], columns: str, **read: Callable[[Any], Any]) -> Callable[[Row], T]:
    """A row's ``columns`` as a ``cls``, each column given to the field of its name: through ``read[name]``
    when given, as a timestamp when the name ends in ``_at``, as it is otherwise.

    Compiled once into the constructor call one would write by hand (as dataclasses compiles ``__init__``):
    the claim path converts every code it hands out, and a loop over the columns measured ~30% slower."""
    names = [name.strip() for name in columns.split(",")]
    read = {**{name: dt for name in names if name.endswith("_at")}, **read}
    args = ", ".join(f"{n}=_{n}(row[{n!r}])" if n in read else f"{n}=row[{n!r}]" for n in names)
    scope: dict[str, Any] = {"cls": cls, **{f"_{name}": fn for name, fn in read.items()}}
    exec(f"def of(row):\n    return cls({args})", scope)  # noqa: S102 - the text is built from constants
    of: Callable[[Row], T] = scope["of"]
    return of


code_of = converter(Code, CODE_COLUMNS, state=CodeState)
lease_of = converter(Lease, LEASE_COLUMNS, state=LeaseState)
profile_of = converter(
    Profile, PROFILE_COLUMNS, custom=lambda custom: {str(k): str(v) for k, v in from_json(custom).items()}
)
# A redemption row is read with its code's value and pool and its profile's key (``ops/redemptions.py``).
redemption_of = converter(
    Redemption,
    "id, code_id, pool_id, code, created_at, profile_id, profile, order_ref, amount, metadata,"
    " rolled_back_at",
    amount=lambda amount: None if amount is None else Decimal(amount),
    metadata=from_json,
)
delivery_of = converter(Delivery, DELIVERY_COLUMNS, data=from_json, state=DeliveryState)
# Leased for sending: with its account's signing key.
leased_delivery_of = converter(Delivery, f"{DELIVERY_COLUMNS}, secret", data=from_json, state=DeliveryState)
job_of = converter(Job, JOB_COLUMNS, kind=JobKind, state=JobState, params=from_json)


def account_of(row: Row, *, read_only: bool = False) -> Account:
    return Account(row["id"], row["name"], row["public_key"], at(row["created_at"]), read_only=read_only)


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


settings_of = converter(
    PoolSettings,
    ", ".join(POOL_SETTINGS),
    **dict.fromkeys(("public_fetch", "case_insensitive", "ignore_separators", "holder_only"), bool),
)


def pool_of(row: Row) -> Pool:
    return Pool(
        id=row["id"],
        account_id=row["account_id"],
        name=row["name"],
        settings=settings_of(row),
        counts=PoolCounts(available=row["n_available"], issued=row["n_issued"], redeemed=row["n_redeemed"]),
        created_at=at(row["created_at"]),
        fallback_since=dt(row["fallback_since"]),
    )


def normalization_of(row: Row) -> Normalization:
    """A pool's matching rules from its ``case_insensitive`` and ``ignore_separators`` columns."""
    return Normalization(bool(row["case_insensitive"]), bool(row["ignore_separators"]))
