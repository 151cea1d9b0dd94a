"""Account credentials: API keys are random, shown once, and stored only as a SHA-256 digest.

A plain digest (not a slow password hash) is right here because the keys carry 256 bits of randomness: there
is nothing to brute-force, and the digest doubles as the lookup key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from promopool.domain.errors import ReadOnlyKey
from promopool.domain.models import Account

API_KEY_PREFIX = "pp_"
FIRST_KEY_NAME = "initial key"

# A key's last use is recorded at most this often: the claim path authenticates thousands of times a second,
# and a write per request would cost more than the claim. So last_used_at lags the real last use by up to
# this, plus the authenticator's cache (auth_cache_seconds).
LAST_USED_PRECISION = timedelta(minutes=1)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_public_key() -> str:
    return secrets.token_hex(16)


def hash_api_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()


def checksum_of(account_name: str, api_key: str) -> str:
    """The SuperSaaS ``checksum`` credential: hex MD5 of the account name and the API key, concatenated.

    MD5 because the vendor's clients compute exactly this; what matters here is that the key cannot be
    recovered from the checksum (preimage resistance, which MD5 still offers), not collisions.
    """
    data = (account_name + api_key).encode("utf-8", "surrogatepass")
    return hashlib.md5(data).hexdigest()  # noqa: S324 - the vendor's wire format, see the docstring


def same_secret(a: str, b: str) -> bool:
    """Constant-time comparison of two secrets (or digests)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def last_use_is_stale(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use of the key now should be recorded (see LAST_USED_PRECISION)."""
    return last_used_at is None or now - last_used_at >= LAST_USED_PRECISION


def check_writable(account: Account) -> None:
    """ReadOnlyKey when the caller authenticated with a read-only key: every write use case calls this."""
    if account.read_only:
        raise ReadOnlyKey()
