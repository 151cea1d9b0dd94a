"""The one exception tree of promopool.

Every error the service raises is a ``PromopoolError`` with a stable ``code``; each API dialect maps the tree
to its own envelope in one function (native: ``api/errors.py``)::

    PromopoolError
    ├── InvalidInput            invalid_input       the request is malformed or breaks a rule
    │   ├── InvalidCode         invalid_code
    │   ├── PayloadTooLarge     payload_too_large
    │   └── KeySpaceTooSmall    key_space_too_small a generation would make codes too easy to guess
    ├── Unauthenticated         unauthenticated     no or unknown credentials
    ├── Forbidden               forbidden           credentials fine, action not allowed
    │   └── ReadOnlyKey         read_only_key       a read-only API key asked for a write
    ├── NotFound                not_found
    │   ├── PoolNotFound        pool_not_found
    │   ├── CodeNotFound        code_not_found
    │   ├── CodeUnusable        code_unusable       validate/redeem: the one answer to all but the code's
    │   │                                           holder, whatever the reason (guessing learns nothing)
    │   ├── RedemptionNotFound  redemption_not_found
    │   ├── ProfileNotFound     profile_not_found
    │   ├── LeaseNotFound       lease_not_found
    │   ├── JobNotFound         job_not_found
    │   └── ApiKeyNotFound      api_key_not_found
    ├── Conflict                conflict
    │   ├── AlreadyExists       already_exists
    │   ├── IdempotencyKeyReused idempotency_key_reused
    │   ├── PoolExhausted       pool_exhausted      no available code left (a bulk claim: fewer than asked)
    │   ├── PoolExpired         pool_expired
    │   ├── CodeExpired         code_expired        told to the code's holder only
    │   ├── CodeUsedUp          code_used_up        told to the code's holder only
    │   ├── ProfileLimitReached profile_limit_reached  told to the code's holder only
    │   ├── AlreadyRolledBack   already_rolled_back
    │   ├── LeaseExpired        lease_expired       a lease that ran out cannot be confirmed or released
    │   ├── LeaseReleased       lease_released
    │   ├── LastApiKey          last_api_key        an account's only key cannot be revoked
    │   └── NormalizationCollision normalization_collision  a setting that would make two codes one
    ├── RateLimited             rate_limited
    └── StorageUnavailable      storage_unavailable the database cannot be reached; on a write, whether it
        │                                           was done is unknown (retry with the same Idempotency-Key)
        └── StorageBusy         storage_busy        a lock was not granted in time (another transaction held
                                                    the pool's row, or SQLite's write lock); retry after
"""

from __future__ import annotations

from typing import Any, ClassVar


class PromopoolError(Exception):
    code: ClassVar[str] = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(PromopoolError):
    code = "invalid_input"


class InvalidCode(InvalidInput):
    code = "invalid_code"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class Unauthenticated(PromopoolError):
    code = "unauthenticated"


class Forbidden(PromopoolError):
    code = "forbidden"


class ReadOnlyKey(Forbidden):
    code = "read_only_key"

    def __init__(self) -> None:
        super().__init__("this API key is read-only: use a read-write key for this request")


class NotFound(PromopoolError):
    code = "not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"

    def __init__(self, pool_id: int) -> None:
        super().__init__(f"pool {pool_id} not found", pool_id=pool_id)


class CodeNotFound(NotFound):
    code = "code_not_found"


class CodeUnusable(NotFound):
    code = "code_unusable"

    def __init__(self) -> None:
        # No details and no echo of the value: the answer must be the same for every refused code.
        super().__init__("there is no usable code with this value")


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"

    def __init__(self, redemption_id: int) -> None:
        super().__init__(f"redemption {redemption_id} not found", redemption_id=redemption_id)


class ProfileNotFound(NotFound):
    code = "profile_not_found"


class LeaseNotFound(NotFound):
    code = "lease_not_found"

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id} not found", lease_id=lease_id)


class Conflict(PromopoolError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class PoolExhausted(Conflict):
    code = "pool_exhausted"

    def __init__(self, pool_id: int, *, requested: int | None = None, available: int | None = None) -> None:
        if requested is None:
            super().__init__(f"pool {pool_id} has no available code left", pool_id=pool_id)
        else:  # a bulk claim: nothing was taken, and the caller learns what it may ask for instead
            super().__init__(
                f"pool {pool_id} has {available} available codes, fewer than the {requested} asked for;"
                " nothing was taken",
                pool_id=pool_id,
                requested=requested,
                available=available,
            )


class PoolExpired(Conflict):
    code = "pool_expired"

    def __init__(self, pool_id: int) -> None:
        super().__init__(f"pool {pool_id} has expired", pool_id=pool_id)


class CodeExpired(Conflict):
    code = "code_expired"


class CodeUsedUp(Conflict):
    code = "code_used_up"


class ProfileLimitReached(Conflict):
    code = "profile_limit_reached"


class AlreadyRolledBack(Conflict):
    code = "already_rolled_back"

    def __init__(self, redemption_id: int) -> None:
        super().__init__(f"redemption {redemption_id} was already rolled back", redemption_id=redemption_id)


class LeaseExpired(Conflict):
    code = "lease_expired"

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id} ran out; its code went back to the pool", lease_id=lease_id)


class LeaseReleased(Conflict):
    code = "lease_released"

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id} was released", lease_id=lease_id)


class LastApiKey(Conflict):
    code = "last_api_key"

    def __init__(self, key_id: int) -> None:
        message = f"API key {key_id} is the account's only key: create another one first, then revoke this"
        super().__init__(message, key_id=key_id)


class NormalizationCollision(Conflict):
    code = "normalization_collision"


class RateLimited(PromopoolError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class StorageUnavailable(PromopoolError):
    code = "storage_unavailable"


class StorageBusy(StorageUnavailable):
    code = "storage_busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class KeySpaceTooSmall(InvalidInput):
    code = "key_space_too_small"


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found", job_id=job_id)


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"API key {key_id} not found", key_id=key_id)
