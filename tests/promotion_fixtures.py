"""Test-only helpers for the promotion tests: per-code fields no use case sets yet.

Redemptions (which count ``usage``) and code descriptions have no use case of their own yet; these helpers
write the columns directly with plain SQL, so the tests can see them rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime

from promopool.storage import Store
from tests.helpers import execute_sql


def literal(value: str | int | datetime) -> str:
    """``value`` as SQL both engines read; a timestamp as the fixed-width UTC text SQLite stores."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "'" + value.replace("'", "''") + "'"


async def set_code_fields(
    store: Store,
    *,
    pool_id: int,
    value: str,
    description: str | None = None,
    usage: int | None = None,
    expires_at: datetime | None = None,
) -> None:
    changes = {"description": description, "usage_count": usage, "expires_at": expires_at}
    sets = ", ".join(f"{column} = {literal(v)}" for column, v in changes.items() if v is not None)
    where = f"pool_id = {pool_id} AND value = {literal(value)}"
    await execute_sql(store, f"UPDATE codes SET {sets} WHERE {where}")
