"""Wire shapes of the native API (msgspec structs: validated on the way in, documented in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from promopool.api.deps import MAX_ID
from promopool.domain import (
    Account,
    BulkClaimed,
    Claimed,
    Code,
    CodeState,
    ImportReport,
    Lease,
    LeaseState,
    Pool,
    Redeemed,
    Redemption,
)
from promopool.domain.alerts import MAX_THRESHOLD, MAX_URL_LENGTH, Delivery, DeliveryState, PoolAlert
from promopool.domain.claims import MAX_BULK_CLAIM
from promopool.domain.codes import MAX_CODE_LENGTH, MAX_DESCRIPTION
from promopool.domain.fallback import MAX_VALID_FOR_SECONDS
from promopool.domain.generation import MAX_COUNT
from promopool.domain.jobs import Job, JobKind, JobState
from promopool.domain.leases import MAX_LEASE_SECONDS
from promopool.domain.recipients import MAX_RECIPIENTS
from promopool.domain.redemptions import MAX_PROFILE_KEY, CodeUse

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


FallbackCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_CODE_LENGTH,
        pattern=VISIBLE_TEXT,
        description="A shared code an empty pool answers claims with (`fallback: true`), never issued.",
    ),
]
ValidFor = Annotated[
    int,
    msgspec.Meta(
        ge=1,
        le=MAX_VALID_FOR_SECONDS,
        description="A claimed code expires this many seconds after its `issued_at`.",
    ),
]


class PoolCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    max_uses: PositiveInt = 1
    per_profile_limit: PositiveInt | None = None
    expires_at: AwareDatetime | None = None
    public_fetch: bool = False
    case_insensitive: bool = False
    ignore_separators: bool = False
    holder_only: bool = False
    fallback_code: FallbackCode | None = None
    fallback_pool_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | None = None
    valid_for_seconds: ValidFor | None = None


Threshold = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=MAX_THRESHOLD,
        description="A `pool.low_stock` event when a claim takes the available count to this or below.",
    ),
]
WebhookUrl = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_URL_LENGTH,
        description="An http:// or https:// URL the pool's events are POSTed to (needs a threshold).",
    ),
]


class PoolUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Only the fields given change; ``null`` clears an optional setting."""

    name: Name | UnsetType = UNSET
    max_uses: PositiveInt | UnsetType = UNSET
    per_profile_limit: PositiveInt | UnsetType | None = UNSET
    expires_at: AwareDatetime | UnsetType | None = UNSET
    public_fetch: bool | UnsetType = UNSET
    case_insensitive: bool | UnsetType = UNSET
    ignore_separators: bool | UnsetType = UNSET
    holder_only: bool | UnsetType = UNSET
    fallback_code: FallbackCode | UnsetType | None = UNSET
    fallback_pool_id: Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)] | UnsetType | None = UNSET
    valid_for_seconds: ValidFor | UnsetType | None = UNSET
    low_stock_threshold: Threshold | UnsetType | None = UNSET  # null removes the alert and its webhook URL
    webhook_url: WebhookUrl | UnsetType | None = UNSET


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
    case_insensitive: bool
    ignore_separators: bool
    holder_only: bool
    counts: Counts
    created_at: datetime
    low_stock_threshold: int | None = None
    webhook_url: str | None = None
    fallback_code: str | None = None
    fallback_pool_id: int | None = None
    fallback_since: datetime | None = None  # when the empty pool started serving its fallback
    valid_for_seconds: int | None = None

    @classmethod
    def of(cls, pool: Pool, alert: PoolAlert | None = None) -> PoolOut:
        s, c = pool.settings, pool.counts
        return cls(
            id=pool.id,
            name=pool.name,
            max_uses=s.max_uses,
            per_profile_limit=s.per_profile_limit,
            expires_at=s.expires_at,
            public_fetch=s.public_fetch,
            case_insensitive=s.case_insensitive,
            ignore_separators=s.ignore_separators,
            holder_only=s.holder_only,
            counts=Counts(available=c.available, issued=c.issued, redeemed=c.redeemed, total=c.total),
            created_at=pool.created_at,
            low_stock_threshold=None if alert is None else alert.threshold,
            webhook_url=None if alert is None else alert.webhook_url,
            fallback_code=s.fallback_code,
            fallback_pool_id=s.fallback_pool_id,
            fallback_since=pool.fallback_since,
            valid_for_seconds=s.valid_for_seconds,
        )


class PoolList(msgspec.Struct):
    pools: list[PoolOut]
    next_cursor: str | None = None  # pass back as `cursor` for the next page; null on the last
    has_more: bool = False


class DeliveryOut(msgspec.Struct):
    """A webhook delivery; its id is the ``webhook-id`` header of every attempt."""

    id: int
    event: str
    url: str
    state: DeliveryState
    attempts: int
    created_at: datetime

    @classmethod
    def of(cls, delivery: Delivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event=delivery.event,
            url=delivery.url,
            state=delivery.state,
            attempts=delivery.attempts,
            created_at=delivery.created_at,
        )


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


class CodeUpdate(msgspec.Struct, forbid_unknown_fields=True):
    description: Annotated[
        str,
        msgspec.Meta(
            max_length=MAX_DESCRIPTION,
            pattern=f"^[^{CONTROL}]*$",
            description='What the code is for (the SuperSaaS dialect shows it); `""` clears it.',
        ),
    ]


class CodePage(msgspec.Struct):
    codes: list[CodeOut]
    next_cursor: str | None  # pass back as `cursor` for the next page; null on the last
    has_more: bool = False


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


class LeaseOut(msgspec.Struct):
    id: int
    state: LeaseState
    expires_at: datetime
    created_at: datetime
    ended_at: datetime | None

    @classmethod
    def of(cls, lease: Lease) -> LeaseOut:
        return cls(
            id=lease.id,
            state=lease.state,
            expires_at=lease.expires_at,
            created_at=lease.created_at,
            ended_at=lease.ended_at,
        )


class ClaimOut(msgspec.Struct, omit_defaults=True):  # `fallback` is shown only when true
    code: str
    pool_id: int
    issued_at: datetime | None
    replayed: bool
    lease: LeaseOut | None  # a claim with lease_seconds (always shown, null otherwise)
    fallback: bool = False  # the pool was empty: its fallback code, or a code of its fallback pool (pool_id)

    @classmethod
    def of(cls, claimed: Claimed) -> ClaimOut:
        code = claimed.code
        return cls(
            code=code.value,
            pool_id=code.pool_id,
            issued_at=code.issued_at,
            replayed=claimed.replayed,
            lease=None if claimed.lease is None else LeaseOut.of(claimed.lease),
            fallback=claimed.fallback,
        )


class ClaimIn(msgspec.Struct, forbid_unknown_fields=True):
    """A claim's options, all optional (no body, or ``{}``: the pool's next code). ``count`` claims that many;
    ``recipient`` that recipient's code; ``recipients`` many recipients' codes at once."""

    count: Annotated[int, msgspec.Meta(ge=1, le=MAX_BULK_CLAIM)] | None = None
    partial: bool = False  # with count: fewer left than asked takes what is left instead of answering 409
    recipient: Reference | None = None  # this recipient's code of the pool, always the same one
    recipients: Recipients | None = None  # many recipients' codes at once, one transaction
    lease_seconds: LeaseSeconds | None = None  # reserve the code only; confirm or release the lease


class BulkClaimOut(msgspec.Struct, omit_defaults=True):  # `fallback` is shown only when true
    pool_id: int
    count: int  # how many codes were handed out (fewer than asked only with partial)
    codes: list[str]
    issued_at: datetime | None  # one transaction: every code of the claim was issued at this time
    replayed: bool
    fallback: bool = False  # the pool could not serve it: its fallback (pool_id says which pool served)

    @classmethod
    def of(cls, claimed: BulkClaimed) -> BulkClaimOut:
        return cls(
            pool_id=claimed.pool_id,
            count=len(claimed.codes),
            codes=[code.value for code in claimed.codes],
            issued_at=claimed.codes[0].issued_at,
            replayed=claimed.replayed,
            fallback=claimed.fallback,
        )


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


Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
# A typed code: anything up to the limit (a value no code can have is answered as not found, never 400).
Text = Annotated[str, msgspec.Meta(max_length=1024)]
# The rules of domain/redemptions.py (check_profile_key, check_order_ref), stated exactly for the document.
Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PROFILE_KEY, pattern=VISIBLE_TEXT)]
Recipients = Annotated[list[Reference], msgspec.Meta(min_length=1, max_length=MAX_RECIPIENTS)]
LeaseSeconds = Annotated[int, msgspec.Meta(ge=1, le=MAX_LEASE_SECONDS)]
# Money as a decimal string ("19.90") or a whole JSON number; no floats, whose binary value is not the amount
# written. The bounds keep within domain.redemptions.MAX_AMOUNT_DIGITS (30), stated exactly for the document.
DecimalText = Annotated[str, msgspec.Meta(pattern=r"^-?[0-9]{1,18}(\.[0-9]{1,12})?$")]
WholeAmount = Annotated[int, msgspec.Meta(ge=-(10**18 - 1), le=10**18 - 1)]

# The rule of domain/redemptions.py (check_metadata): no key or string anywhere in it holds a NUL
# (PostgreSQL's jsonb cannot). The marker has api/native/openapi.py (ClosedStructSchemaPlugin) state it in
# the document.
NO_NUL = "^[^\\x00]*$"
Metadata = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="Any JSON object; no key or string in it, at any depth, may hold a NUL character.",
        extra={"no_nul": True},
    ),
]


class CodeCheck(msgspec.Struct, forbid_unknown_fields=True):
    """Validate: may this code be used now, by this profile?"""

    code: Text
    pool_id: Id | None = None
    profile: Reference | None = None


class RedeemIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Text
    pool_id: Id | None = None
    profile: Reference | None = None
    order_ref: Reference | None = None
    amount: DecimalText | WholeAmount | None = None
    metadata: Metadata | None = None

    def decimal_amount(self) -> Decimal | None:
        return None if self.amount is None else Decimal(self.amount)


class ValidationOut(msgspec.Struct):
    valid: bool
    code: str
    pool_id: int
    usage_count: int
    uses_left: int
    profile_uses_left: int | None
    expires_at: datetime | None

    @classmethod
    def of(cls, use: CodeUse) -> ValidationOut:
        return cls(
            valid=True,
            code=use.code.value,
            pool_id=use.pool.id,
            usage_count=use.code.usage_count,
            uses_left=use.uses_left,
            profile_uses_left=use.profile_uses_left,
            expires_at=use.expires_at,
        )


class RedemptionOut(msgspec.Struct):
    id: int
    code: str
    pool_id: int
    profile: str | None
    order_ref: str | None
    amount: Decimal | None
    metadata: dict[str, Any] | None
    created_at: datetime
    rolled_back_at: datetime | None

    @classmethod
    def of(cls, r: Redemption) -> RedemptionOut:
        return cls(
            id=r.id,
            code=r.code,
            pool_id=r.pool_id,
            profile=r.profile,
            order_ref=r.order_ref,
            amount=r.amount,
            metadata=r.metadata,
            created_at=r.created_at,
            rolled_back_at=r.rolled_back_at,
        )


class RedeemOut(msgspec.Struct):
    """A redemption (or its rollback) and the code's usage count after it."""

    redemption: RedemptionOut
    usage_count: int
    replayed: bool

    @classmethod
    def of(cls, done: Redeemed) -> RedeemOut:
        return cls(
            redemption=RedemptionOut.of(done.redemption),
            usage_count=done.code.usage_count,
            replayed=done.replayed,
        )


class RedemptionPage(msgspec.Struct):
    redemptions: list[RedemptionOut]
    next_cursor: str | None  # pass back as `cursor` for the next page; null on the last
    has_more: bool
    next_after: int | None  # deprecated: the last id, for the deprecated `after`; use next_cursor


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
