"""What a keyed request carries into the one idempotency protocol (``storage/ops/idempotency.py``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Generic, TypeVar

import msgspec

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Keyed:
    """An Idempotency-Key and the fingerprint of the request it came with: the same key with another
    fingerprint is another request, refused (``idempotency_key_reused``)."""

    key: str
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class Once(Generic[T]):
    """A keyed write's answer, and whether it is the first answer replayed."""

    value: T
    replayed: bool = False


def fingerprint(*parts: object) -> str:
    """A digest of a request's parts (values msgspec encodes: strings, numbers, dataclasses, dicts)."""
    return hashlib.sha256(msgspec.json.encode(parts, order="sorted")).hexdigest()


def keyed(key: str | None, *parts: object) -> Keyed | None:
    """The Keyed request for ``key`` (None without one), its fingerprint made of ``parts``."""
    return None if key is None else Keyed(key, fingerprint(*parts))
