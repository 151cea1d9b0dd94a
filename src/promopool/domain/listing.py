"""A page of an account's pools as the admin list asks for it: a filter, a sort, a page; and what each row
shows beside the pool (its low-stock threshold)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput
from promopool.domain.models import Pool

PoolSort = Literal["name", "created", "available", "expiry"]
POOL_SORTS: tuple[PoolSort, ...] = get_args(PoolSort)
PER_PAGE = 25
MAX_NAME_FILTER = 200


@dataclass(frozen=True, slots=True)
class PoolQuery:
    name_contains: str = ""  # case-insensitive for ASCII letters
    low_stock: bool = False  # only pools at or below their low-stock threshold
    sort: PoolSort = "created"
    descending: bool = False
    page: int = 1  # from 1
    per_page: int = PER_PAGE

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page


def pool_query(*, name: str, low_stock: bool, sort: str, descending: bool, page: int) -> PoolQuery:
    """The query a form asked for; InvalidInput naming the field that no list could answer."""
    name = name.strip()
    if len(name) > MAX_NAME_FILTER or has_control_characters(name):
        raise InvalidInput("the name filter must be a line of at most 200 characters", field="name")
    if sort not in POOL_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(POOL_SORTS)}", field="sort")
    if page < 1:
        raise InvalidInput("page must be at least 1", field="page")
    return PoolQuery(name, low_stock, sort, descending, page)


@dataclass(frozen=True, slots=True)
class PoolRow:
    pool: Pool
    threshold: int | None  # its low-stock alert's, if any

    @property
    def low(self) -> bool:
        return self.threshold is not None and self.pool.counts.available <= self.threshold


@dataclass(frozen=True, slots=True)
class PoolPage:
    query: PoolQuery
    rows: list[PoolRow]
    total: int  # pools matching the filter, on every page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))
