"""Wire shapes of the native API (msgspec structs: validated on the way in, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import UNSET, UnsetType

from promopool.domain import Account, Claimed, Code, CodeState, ImportReport, Pool

PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
# The rule of domain/codes.py (check_name) as a pattern, so that the OpenAPI document states it exactly: no
# control characters, and something left after surrounding whitespace is stripped. The whitespace is spelled
# out because `\s` differs between Python and the JSON Schema (ECMA-262) dialect.
CONTROL = "\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029"
_SPACE = " \\xa0\\u1680\\u2000-\\u200a\\u202f\\u205f\\u3000"
VISIBLE_TEXT = f"^[^{CONTROL}]*[^{CONTROL}{_SPACE}][^{CONTROL}]*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=VISIBLE_TEXT)]
# Timestamps must carry their zone: a bare local time means different instants to different servers.
AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="An instant with its time zone, between 1970-01-01 and 9999-01-01."),
]


class PoolCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    max_uses: PositiveInt = 1
    per_profile_limit: PositiveInt | None = None
    expires_at: AwareDatetime | None = None
    public_fetch: bool = False


class PoolUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields given change; ``null`` clears an optional setting."""

    name: Name | UnsetType = UNSET
    max_uses: PositiveInt | UnsetType = UNSET
    per_profile_limit: PositiveInt | UnsetType | None = UNSET
    expires_at: AwareDatetime | UnsetType | None = UNSET
    public_fetch: bool | UnsetType = UNSET


class Counts(msgspec.Struct):
    available: int
    issued: int
    redeemed: int
    total: int


class PoolOut(msgspec.Struct):
    id: int
    name: str
    max_uses: int
    per_profile_limit: int | None
    expires_at: datetime | None
    public_fetch: bool
    counts: Counts
    created_at: datetime

    @classmethod
    def of(cls, pool: Pool) -> PoolOut:
        s, c = pool.settings, pool.counts
        return cls(
            id=pool.id,
            name=pool.name,
            max_uses=s.max_uses,
            per_profile_limit=s.per_profile_limit,
            expires_at=s.expires_at,
            public_fetch=s.public_fetch,
            counts=Counts(available=c.available, issued=c.issued, redeemed=c.redeemed, total=c.total),
            created_at=pool.created_at,
        )


class PoolList(msgspec.Struct):
    pools: list[PoolOut]


class CodeOut(msgspec.Struct):
    code: str
    pool_id: int
    state: CodeState
    description: str
    usage_count: int
    expires_at: datetime | None
    issued_at: datetime | None
    created_at: datetime | None

    @classmethod
    def of(cls, code: Code) -> CodeOut:
        return cls(
            code=code.value,
            pool_id=code.pool_id,
            state=code.state,
            description=code.description,
            usage_count=code.usage_count,
            expires_at=code.expires_at,
            issued_at=code.issued_at,
            created_at=code.created_at,
        )


class CodePage(msgspec.Struct):
    codes: list[CodeOut]
    next_cursor: str | None


class ImportCodes(msgspec.Struct, forbid_unknown_fields=True):
    codes: list[str]


class InvalidOut(msgspec.Struct):
    position: int
    reason: str


class ImportOut(msgspec.Struct):
    inserted: int
    duplicates: int
    invalid: int
    invalid_samples: list[InvalidOut]

    @classmethod
    def of(cls, report: ImportReport) -> ImportOut:
        return cls(
            inserted=report.inserted,
            duplicates=report.duplicates,
            invalid=report.invalid,
            invalid_samples=[InvalidOut(s.position, s.reason) for s in report.invalid_samples],
        )


class ClaimOut(msgspec.Struct):
    code: str
    pool_id: int
    issued_at: datetime | None
    replayed: bool

    @classmethod
    def of(cls, claimed: Claimed) -> ClaimOut:
        code = claimed.code
        return cls(code=code.value, pool_id=code.pool_id, issued_at=code.issued_at, replayed=claimed.replayed)


class AccountOut(msgspec.Struct):
    id: int
    name: str
    public_key: str
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id, name=account.name, public_key=account.public_key, created_at=account.created_at
        )


class ErrorDetail(msgspec.Struct):
    code: str
    message: str
    details: dict[str, object] | None = None


class ErrorOut(msgspec.Struct):
    """The one error body of the native API."""

    error: ErrorDetail


class Health(msgspec.Struct):
    status: str
    database: str | None = None
