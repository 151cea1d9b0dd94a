"""Recipient-bound claims: who a code is meant for. A recipient of a pool always gets the same code (until a
lease on it is released or runs out), and becomes the code's holder: a profile named by the recipient in the
account's ``default`` profile database, as a redeem's ``profile`` names one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar, cast

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput, PromopoolError
from promopool.domain.models import Claimed, Code, Lease
from promopool.domain.redemptions import MAX_PROFILE_KEY

MAX_RECIPIENT = MAX_PROFILE_KEY  # it is a profile key
MAX_RECIPIENTS = 10_000  # per bulk request: one transaction holds the pool's row for them all


def check_recipient(recipient: str, *, field: str = "recipient") -> str:
    if not recipient or len(recipient) > MAX_RECIPIENT or has_control_characters(recipient):
        raise InvalidInput(
            f"{field} must be 1-{MAX_RECIPIENT} characters, no control characters", field=field
        )
    return recipient


def check_recipients(recipients: Sequence[str]) -> list[str]:
    """The request's recipients, checked; repeats stay (each gets the same code)."""
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise InvalidInput(f"recipients must list 1-{MAX_RECIPIENTS} recipients", field="recipients")
    return [check_recipient(recipient, field="recipients") for recipient in recipients]


def distinct(recipients: Sequence[str]) -> list[str]:
    """Each recipient once, in order of first appearance."""
    return list(dict.fromkeys(recipients))


R = TypeVar("R", bound="Claimed | PromopoolError")


def in_request_order(recipients: Sequence[str], claimed: Mapping[str, R]) -> list[R]:
    """The answer of each entry of ``recipients``, from the answers of the distinct ones: a recipient named
    again gets the first one's code again, as a replay."""
    out: list[R] = []
    seen: set[str] = set()
    for recipient in recipients:
        result = claimed[recipient]
        if recipient in seen and isinstance(result, Claimed):
            result = cast(R, replace(result, replayed=True))
        out.append(result)
        seen.add(recipient)
    return out


@dataclass(frozen=True, slots=True)
class Held:
    """A code a recipient holds in a pool, with the lease it was claimed under (if any)."""

    recipient: str
    code: Code
    lease: Lease | None = None
