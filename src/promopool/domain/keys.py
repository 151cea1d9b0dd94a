"""Account credentials: API keys are random, shown once, and stored only as a SHA-256 digest.

A plain digest (not a slow password hash) is right here because the keys carry 256 bits of randomness: there
is nothing to brute-force, and the digest doubles as the lookup key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

API_KEY_PREFIX = "pp_"


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
