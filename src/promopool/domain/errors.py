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
    ├── NotFound                not_found
    │   ├── PoolNotFound        pool_not_found
    │   ├── CodeNotFound        code_not_found
    │   └── JobNotFound         job_not_found
    ├── Conflict                conflict
    │   ├── AlreadyExists       already_exists
    │   ├── IdempotencyKeyReused idempotency_key_reused
    │   ├── PoolExhausted       pool_exhausted      no available code left
    │   └── PoolExpired         pool_expired
    ├── RateLimited             rate_limited
    └── StorageUnavailable      storage_unavailable the database cannot be reached
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


class NotFound(PromopoolError):
    code = "not_found"


class PoolNotFound(NotFound):
    code = "pool_not_found"

    def __init__(self, pool_id: int) -> None:
        super().__init__(f"pool {pool_id} not found", pool_id=pool_id)


class CodeNotFound(NotFound):
    code = "code_not_found"


class Conflict(PromopoolError):
    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class IdempotencyKeyReused(Conflict):
    code = "idempotency_key_reused"


class PoolExhausted(Conflict):
    code = "pool_exhausted"

    def __init__(self, pool_id: int) -> None:
        super().__init__(f"pool {pool_id} has no available code left", pool_id=pool_id)


class PoolExpired(Conflict):
    code = "pool_expired"

    def __init__(self, pool_id: int) -> None:
        super().__init__(f"pool {pool_id} has expired", pool_id=pool_id)


class RateLimited(PromopoolError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after


class StorageUnavailable(PromopoolError):
    code = "storage_unavailable"


class KeySpaceTooSmall(InvalidInput):
    code = "key_space_too_small"


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} not found", job_id=job_id)
