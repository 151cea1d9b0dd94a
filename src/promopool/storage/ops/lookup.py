"""Finding codes by a typed value under each pool's normalization: the rules live in
``domain/normalization.py``; these read the candidates sharing a lookup key (index ``codes_lookup``) in the
caller's transaction."""

from __future__ import annotations

from promopool.domain import Code, Pool
from promopool.domain.normalization import Normalization, best_match, lookup_key
from promopool.storage.driver import Fetch, FetchRow, Op
from promopool.storage.ops.codes import stored_alike
from promopool.storage.rows import CODE_COLUMNS, POOL_COLUMNS, code_of, normalization_of, pool_of, qualified

_POOL = [column.strip() for column in POOL_COLUMNS.split(",")]
# The pool's columns renamed p_*, as both tables have an id and a created_at.
FIND = (
    f"SELECT {qualified(CODE_COLUMNS, 'c')}, {', '.join(f'p.{c} AS p_{c}' for c in _POOL)}"
    " FROM codes c JOIN pools p ON p.id = c.pool_id WHERE c.lookup_key = $1 AND p.account_id = $2"
)


def find_code(account_id: int, value: str, pool_id: int | None) -> Op[tuple[Code, Pool] | None]:
    """The code of the account (of ``pool_id`` when given) that ``value`` means, with its pool."""
    narrow = ("", ()) if pool_id is None else (" AND c.pool_id = $3", (pool_id,))
    rows = yield Fetch(FIND + narrow[0], lookup_key(value), account_id, *narrow[1])
    found = [(code_of(row), pool_of({c: row[f"p_{c}"] for c in _POOL})) for row in rows]
    return best_match(
        value, ((pair, pair[0].value, pair[1].settings.normalization, pair[1].id) for pair in found)
    )


def same_code(pool_id: int, value: str, normalization: Normalization) -> Op[str | None]:
    """The pool's code that ``value`` equals under ``normalization``, if any."""
    stored = yield from stored_alike(pool_id, [value])
    return next((s for s in stored if normalization.matches(s, value)), None)


def same_code_in_pool(pool_id: int, value: str) -> Op[str | None]:
    """The pool's code that ``value`` equals under the pool's normalization, if any."""
    flags = yield FetchRow("SELECT case_insensitive, ignore_separators FROM pools WHERE id = $1", pool_id)
    return (yield from same_code(pool_id, value, normalization_of(flags)))
