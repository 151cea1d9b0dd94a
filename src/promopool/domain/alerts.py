"""Low-stock alerts, their webhook deliveries, and pool activity over time. Plain values and rules, no I/O.

A pool's alert has a ``threshold``: a claim batch that takes the pool's available count from above the
threshold to at or below it is one *crossing* and yields exactly one ``pool.low_stock`` event. Refilling the
pool above the threshold arms it again. The event is delivered to the alert's ``webhook_url`` (when set) as
a JSON POST signed per Standard Webhooks (https://www.standardwebhooks.com/) under the account's webhook
secret, and with the deprecated ``X-Promopool-Signature`` (kept for one release).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput

LOW_STOCK_EVENT = "pool.low_stock"
TEST_EVENT = "test"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the spec's prefix of a secret, not one)
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
    """Claims, redemptions and codes imported of one pool in one UTC hour."""

    hour: datetime
    claims: int
    redemptions: int
    imports: int = 0


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


class Keep(enum.Enum):
    """A field left as it is (``None`` clears it)."""

    KEEP = enum.auto()


KEEP = Keep.KEEP


def changed_alert(
    current: PoolAlert | None, *, threshold: int | Keep | None = KEEP, webhook_url: str | Keep | None = KEEP
) -> tuple[int | None, str | None]:
    """The valid (threshold, webhook URL) after a change of either; a None threshold removes the alert, and
    with it the URL. InvalidInput naming the field otherwise."""
    if threshold is KEEP:
        threshold = None if current is None else current.threshold
    if webhook_url is KEEP:
        webhook_url = None if current is None or threshold is None else current.webhook_url
    if threshold is None:
        if webhook_url:
            raise InvalidInput("a webhook URL needs a low-stock threshold", field="low_stock_threshold")
        return None, None
    return check_alert(threshold, webhook_url)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in (the activity bucket)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def retry_delay(attempts: int, delays: Sequence[timedelta] = RETRY_DELAYS) -> timedelta | None:
    """How long to wait after the ``attempts``-th failed attempt; None when it was the last one."""
    return delays[attempts - 1] if 1 <= attempts <= len(delays) else None


def new_webhook_secret() -> str:
    """A secret in the Standard Webhooks form: ``whsec_`` and the base64 of a random 32-byte key."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    """The HMAC key of the Standard Webhooks signature: the bytes the secret's base64 encodes.

    Secrets made before the Standard Webhooks signature are URL-safe base64 (``-``, ``_``, no padding);
    read in that alphabet too, so that they keep their key rather than being refused or rotated.
    """
    text = secret.removeprefix(SECRET_PREFIX).replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        # Not base64 at all (a secret set by hand): its text is the key, as for the legacy signature.
        return secret.encode()


def standard_secret(secret: str) -> str:
    """The secret as Standard Webhooks verifiers take it (``whsec_`` + standard base64 of the key); the
    same text as ``secret`` for secrets made since the Standard Webhooks signature."""
    return SECRET_PREFIX + base64.b64encode(signing_key(secret)).decode()


def signature_headers(secret: str, message_id: str, moment: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt to send ``body``; ``message_id`` is the same on every
    attempt of a delivery (receivers de-duplicate on it), the timestamp is the attempt's."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(signing_key(secret)).sign(message_id, moment, body),
        SIGNATURE_HEADER: sign(secret, body),
    }


def sign(secret: str, body: bytes) -> str:
    """The deprecated signature header's value for ``body``: ``sha256=<hex HMAC-SHA256 of the body>``
    under the secret's text (not its decoded key)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def days_until_empty(available: int, claims_per_day: float) -> float | None:
    """At the recent rate, how many days the available codes last; None when nothing is being claimed."""
    if claims_per_day <= 0:
        return None
    return available / claims_per_day
