"""Bulk claim rules: how many codes one request may take."""

from __future__ import annotations

from promopool.domain.errors import InvalidInput

# One bulk claim is one transaction holding the pool's row: 10,000 codes keep it well under a second, and a
# sender wanting more asks again (the CLI streams any count in chunks of this size).
MAX_BULK_CLAIM = 10_000


def check_count(count: int) -> int:
    if not 1 <= count <= MAX_BULK_CLAIM:
        raise InvalidInput(f"count must be 1-{MAX_BULK_CLAIM}", field="count")
    return count
