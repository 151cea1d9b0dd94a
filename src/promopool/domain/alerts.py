"""Low-stock alerts, their webhook deliveries, and pool activity over time. Plain values and rules, no I/O.

A pool's alert has a ``threshold``: a claim batch that takes the pool's available count from above the
threshold to at or below it is one *crossing* and yields exactly one ``pool.low_stock`` event. Refilling the
pool above the threshold arms it again. The event is delivered to the alert's ``webhook_url`` (when set) as
a JSON POST signed with HMAC-SHA256 under the account's webhook secret.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput

LOW_STOCK_EVENT = "pool.low_stock"
SIGNATURE_HEADER = "X-Promopool-Signature"
MAX_URL_LENGTH = 2000
MAX_THRESHOLD = 2**62

# Delivery attempts: the first at once, then after each of these delays; after the last one, `failed`.
RETRY_DELAYS = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=6),
)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PoolAlert:
    pool_id: int
    threshold: int
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event and its delivery: the body is ``envelope()``, fixed at creation, the same on every retry."""

    id: int
    account_id: int
    pool_id: int
    event: str
    url: str
    data: dict[str, Any]
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None = None
    secret: str | None = None  # the account's signing key, filled in when leased for sending

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.event,
            "created_at": self.created_at.isoformat(),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class ActivityPoint:
    """Claims and redemptions of one pool in one UTC hour."""

    hour: datetime
    claims: int
    redemptions: int


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """A pool's counters across all accounts (for the Prometheus gauges)."""

    account: str
    pool_id: int
    pool_name: str
    available: int
    issued: int
    redeemed: int


def check_alert(threshold: int, webhook_url: str | None) -> tuple[int, str | None]:
    """A valid (threshold, webhook URL or None); InvalidInput naming the field otherwise."""
    if not 0 <= threshold <= MAX_THRESHOLD:
        raise InvalidInput("threshold must be a whole number, 0 or more", field="threshold")
    if webhook_url is not None:
        webhook_url = webhook_url.strip() or None
    if webhook_url is not None:
        parts = urlsplit(webhook_url)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or len(webhook_url) > MAX_URL_LENGTH
            or has_control_characters(webhook_url)
            or " " in webhook_url
        ):
            raise InvalidInput(
                f"webhook_url must be an http:// or https:// URL of at most {MAX_URL_LENGTH} characters",
                field="webhook_url",
            )
    return threshold, webhook_url


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in (the activity bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def retry_delay(attempts: int, delays: Sequence[timedelta] = RETRY_DELAYS) -> timedelta | None:
    """How long to wait after the ``attempts``-th failed attempt; None when it was the last one."""
    return delays[attempts - 1] if 1 <= attempts <= len(delays) else None


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=<hex HMAC-SHA256 of the body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def days_until_empty(available: int, claims_per_day: float) -> float | None:
    """At the recent rate, how many days the available codes last; None when nothing is being claimed."""
    if claims_per_day <= 0:
        return None
    return available / claims_per_day
