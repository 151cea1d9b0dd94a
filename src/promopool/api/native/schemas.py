"""Wire shapes of the native API (msgspec structs: validated on the way in, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from promopool.domain import Account, Claimed, Code, CodeState, ImportReport, Pool
from promopool.domain.codes import MAX_CODE_LENGTH
from promopool.domain.generation import MAX_COUNT
from promopool.domain.jobs import Job, JobKind, JobState

PositiveInt = Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class PoolCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    max_uses: PositiveInt = 1
    per_profile_limit: PositiveInt | None = None
    expires_at: datetime | None = None
    public_fetch: bool = False


class PoolUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields given change; ``null`` clears an optional setting."""

    name: Name | UnsetType = UNSET
    max_uses: PositiveInt | UnsetType = UNSET
    per_profile_limit: PositiveInt | UnsetType | None = UNSET
    expires_at: datetime | UnsetType | None = UNSET
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


# -- generation, jobs ------------------------------------------------------------------------------------
Charset = Literal["unambiguous", "digits", "letters", "alphanumeric"]
Affix = Annotated[str, msgspec.Meta(max_length=MAX_CODE_LENGTH)]


class GenerateCodes(msgspec.Struct, forbid_unknown_fields=True):
    """``pattern`` (``#`` = a random character) or ``length`` (default 12), not both."""

    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_COUNT)]
    pattern: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CODE_LENGTH)] | None = None
    length: Annotated[int, msgspec.Meta(ge=1, le=MAX_CODE_LENGTH)] | None = None
    charset: Charset = "unambiguous"
    prefix: Affix = ""
    suffix: Affix = ""
    check_character: bool = False
    uppercase: bool = True


class JobOut(msgspec.Struct):
    id: int
    kind: JobKind
    pool_id: int | None
    state: JobState
    total: int
    done: int
    error: str | None
    params: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        return cls(
            id=job.id,
            kind=job.kind,
            pool_id=job.pool_id,
            state=job.state,
            total=job.total,
            done=job.done,
            error=job.error,
            params=job.params,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
        )
