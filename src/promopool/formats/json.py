"""Decoding the vendor dialects' JSON request bodies: every way a body can be malformed is InvalidInput.

msgspec reports most malformed JSON as DecodeError, but not all of it: a string that is not UTF-8 raises
UnicodeDecodeError, and nesting deeper than it recurses RecursionError (api/errors.py converts the same two
where the framework decodes the native API's bodies).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from promopool.domain.errors import InvalidInput

T = TypeVar("T")


def decode(raw: bytes, type: type[T]) -> T:
    """``raw`` decoded as ``type`` (``object``: any JSON value); InvalidInput saying what is wrong."""
    try:
        return msgspec.json.decode(raw, type=type)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput("malformed JSON: not valid UTF-8") from None
    except RecursionError:
        raise InvalidInput("malformed JSON: nested too deeply") from None
