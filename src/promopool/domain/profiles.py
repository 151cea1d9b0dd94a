"""Profiles: how a profile is named (matching) and how its identifiers are compared.

A profile lives in a profile database of an account. It is found by one identifier, the *matching* mode:

- ``email``: compared trimmed and lower-cased (the whole address, local part included);
- ``phone``: compared as its digits only, a leading ``+`` kept (``+7 (900) 000-00-00`` is ``+79000000000``);
- ``profile_id``: the client's own id for the profile (``Profile.external_id``), compared exactly (trimmed);
- ``custom``: a custom field ``field_name`` holding ``field_value`` (trimmed, compared exactly).

A profile created on attach gets every identifier given, normalized, and an external id
(generated when none was given), so that it can be found again by each of them.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from promopool.domain.codes import has_control_characters
from promopool.domain.errors import InvalidInput

MAX_IDENTIFIER = 256
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


class Matching(enum.StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PROFILE_ID = "profile_id"
    CUSTOM = "custom"


def _text(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_IDENTIFIER or has_control_characters(value):
        raise InvalidInput(f"{name} is not a valid identifier", field=name)
    return value


def normalize_email(value: str | None) -> str | None:
    """Trimmed and lower-cased; None when blank. InvalidInput when it has no ``@``."""
    text = _text(value, "email")
    if text is None:
        return None
    if "@" not in text:
        raise InvalidInput("email must contain '@'", field="email")
    return text.lower()


def normalize_phone(value: str | None) -> str | None:
    """Digits only, a leading ``+`` kept; None when blank. InvalidInput when it holds no digit."""
    text = _text(value, "phone")
    if text is None:
        return None
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if not digits:
        raise InvalidInput("phone must contain digits", field="phone")
    return ("+" if text.startswith("+") else "") + digits


@dataclass(frozen=True, slots=True)
class Identity:
    """The identifiers given for a profile, normalized; ``matching`` names the one it is found by."""

    matching: Matching
    email: str | None = None
    phone: str | None = None
    external_id: str | None = None
    custom: dict[str, str] = field(default_factory=dict)
    field_name: str | None = None

    @property
    def key(self) -> str:
        """The value of the matching identifier."""
        value = {
            Matching.EMAIL: self.email,
            Matching.PHONE: self.phone,
            Matching.PROFILE_ID: self.external_id,
            Matching.CUSTOM: self.custom.get(self.field_name or "", None),
        }[self.matching]
        assert value is not None
        return value

    @property
    def given(self) -> bool:
        """Whether any identifier was given at all."""
        return bool(self.email or self.phone or self.external_id or self.custom)


def identity(
    *,
    matching: str | None,
    email: str | None = None,
    phone: str | None = None,
    profile_id: str | None = None,
    field_name: str | None = None,
    field_value: str | None = None,
    required: bool = True,
) -> Identity:
    """The checked identity; InvalidInput when the matching mode's identifier is missing, if ``required`` or
    if other identifiers are given (they name a profile, but not by the mode it is found by)."""
    try:
        mode = Matching((matching or "email").strip().lower())
    except ValueError:
        raise InvalidInput(
            "matching must be one of email, phone, profile_id, custom", field="matching"
        ) from None
    custom: dict[str, str] = {}
    name = None
    if field_name is not None and field_name.strip():
        name = field_name.strip()
        if not _FIELD_NAME.fullmatch(name):
            raise InvalidInput("field_name must be a plain field name", field="field_name")
        value = _text(field_value, "field_value")
        if value is not None:
            custom[name] = value
    found = Identity(
        matching=mode,
        email=normalize_email(email),
        phone=normalize_phone(phone),
        external_id=_text(profile_id, "profile_id"),
        custom=custom,
        field_name=name,
    )
    if required or found.given:
        missing = {
            Matching.EMAIL: found.email is None,
            Matching.PHONE: found.phone is None,
            Matching.PROFILE_ID: found.external_id is None,
            Matching.CUSTOM: not found.custom,
        }[mode]
        if missing:
            wanted = "field_name and field_value" if mode is Matching.CUSTOM else mode.value
            raise InvalidInput(f"{wanted} is required with matching {mode.value}", field=mode.value)
    return found
