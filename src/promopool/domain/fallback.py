"""What an empty pool answers (its fallback) and how long a claimed code stays valid (relative expiry).

A pool's fallback is a shared code (``fallback_code``: answered with ``fallback: true``, never stored as a
code, never marked issued) or another pool of the same account (``fallback_pool_id``: claims continue from
it). The fallback pools of an account form chains, never cycles, so a claim that follows one ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from promopool.domain.codes import invalid_reason
from promopool.domain.errors import InvalidInput
from promopool.domain.models import Code, CodeState, PoolSettings

# Ten years: longer is "no relative expiry", and keeps issued_at + valid_for inside what the engines store.
MAX_VALID_FOR_SECONDS = 10 * 366 * 86_400
FALLBACK_EVENT = "pool.fallback"  # the webhook event of a pool that starts serving its fallback


def check_fallback(settings: PoolSettings, pool_id: int | None = None) -> None:
    """InvalidInput unless the fallback and relative expiry settings are usable (ownership and cycles are
    checked where the account's pools are read: ``fallback_cycle``)."""
    if settings.fallback_code is not None and settings.fallback_pool_id is not None:
        raise InvalidInput("set fallback_code or fallback_pool_id, not both", field="fallback_code")
    if settings.fallback_code is not None:
        reason = invalid_reason(settings.fallback_code)
        if reason is not None or settings.fallback_code != settings.fallback_code.strip():
            raise InvalidInput(
                "fallback_code must be a code: 1-128 characters, no control characters or surrounding spaces",
                field="fallback_code",
            )
    if settings.fallback_pool_id is not None and settings.fallback_pool_id == pool_id:
        raise InvalidInput("a pool cannot be its own fallback", field="fallback_pool_id")
    seconds = settings.valid_for_seconds
    if seconds is not None and not 1 <= seconds <= MAX_VALID_FOR_SECONDS:
        raise InvalidInput(
            f"valid_for_seconds must be 1-{MAX_VALID_FOR_SECONDS} (or null)", field="valid_for_seconds"
        )


def fallback_refusal(pool_id: int, target: int, fallbacks: Mapping[int, int | None]) -> InvalidInput | None:
    """Why ``pool_id`` may not fall back to ``target``, given the account's pools and their fallback pools
    (``fallbacks``); None when it may. A pool of another account reads as one that does not exist."""
    if target not in fallbacks:
        return InvalidInput(
            "fallback_pool_id must name another pool of this account", field="fallback_pool_id"
        )
    seen: set[int] = set()
    at: int | None = target
    while at is not None and at not in seen:
        if at == pool_id:
            return InvalidInput(
                f"pool {target} falls back to pool {pool_id} already: fallbacks cannot form a cycle",
                field="fallback_pool_id",
            )
        seen.add(at)
        at = fallbacks.get(at)
    return None


def fallback_key(key: str | None, pool_id: int) -> str | None:
    """The Idempotency-Key a claim continued from ``pool_id``'s fallback pool records: the caller's key with
    a suffix no caller can send (keys are printable), so a retry of the same request replays it there."""
    return None if key is None else f"{key}\x1ffallback-of:{pool_id}"


def fallback_code(pool_id: int, value: str, now: datetime) -> Code:
    """The shared fallback code as a claim answers it (id 0: it is not a stored code)."""
    return Code(id=0, pool_id=pool_id, value=value, state=CodeState.ISSUED, issued_at=now)


def valid_until(code: Code, valid_for_seconds: int | None) -> datetime | None:
    """When ``code`` expires: its own expiry, or ``valid_for_seconds`` after it was issued, whichever is
    first (a code not handed out has no relative expiry)."""
    if valid_for_seconds is None or code.issued_at is None:
        return code.expires_at
    relative = code.issued_at + timedelta(seconds=valid_for_seconds)
    return relative if code.expires_at is None else min(code.expires_at, relative)


def with_validity(code: Code, settings: PoolSettings) -> Code:
    """``code`` as shown and checked: its ``expires_at`` the earlier of its own and the relative expiry."""
    expires = valid_until(code, settings.valid_for_seconds)
    return code if expires == code.expires_at else replace(code, expires_at=expires)
