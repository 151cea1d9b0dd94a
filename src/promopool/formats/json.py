"""Decoding JSON request bodies read by hand (the dialects', the native import): every way a body can be
malformed is InvalidInput.

msgspec reports most malformed JSON as DecodeError, but not all of it: a string that is not UTF-8 raises
UnicodeDecodeError, and nesting deeper than it recurses RecursionError (api/errors.py converts the same two,
with the same messages, where the framework decodes the native API's bodies).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from promopool.domain.errors import InvalidInput

T = TypeVar("T")

# What msgspec's plain Python errors mean when they come out of decoding JSON.
UNDECODABLE: dict[type[Exception], str] = {
    RecursionError: "malformed JSON: nested too deeply",
    UnicodeDecodeError: "malformed JSON: not valid UTF-8",
}


def decode(raw: bytes, kind: type[T]) -> T:
    """``raw`` decoded as ``kind`` (``object``: any JSON value); InvalidInput saying what is wrong."""
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    except (RecursionError, UnicodeDecodeError) as exc:
        raise InvalidInput(UNDECODABLE[type(exc)]) from None
