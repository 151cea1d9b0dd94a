"""The use cases. Every dialect, the CLI and the admin pages call these; business rules live here only.

Functions are keyword-only and take the store first. Each checks the caller's account owns what it touches:
another account's pool is indistinguishable from a missing one. One module per area; everything public is
re-exported here, so callers write ``service.claim(...)``.
"""

from promopool.service.accounts import (
    DEFAULT_ACCOUNT_NAME,
    authenticate,
    create_account,
    create_api_key,
    ensure_default_account,
)
from promopool.service.claims import (
    IDEMPOTENCY_TTL,
    MAX_IDEMPOTENCY_KEY,
    check_idempotency_key,
    claim,
    purge_idempotency_keys,
)
from promopool.service.codes import IMPORT_BATCH, MAX_PAGE, delete_code, get_code, import_codes, list_codes
from promopool.service.export import EXPORT_BATCH, export_codes
from promopool.service.generation import (
    GENERATE_BATCH,
    GENERATE_SYNC_LIMIT,
    generate_codes,
    run_generation,
    start_generation,
)
from promopool.service.jobs import JobRunner, fail_stale_jobs, get_job
from promopool.service.pools import create_pool, delete_pool, get_pool, list_pools, update_pool

__all__ = [
    "DEFAULT_ACCOUNT_NAME",
    "EXPORT_BATCH",
    "GENERATE_BATCH",
    "GENERATE_SYNC_LIMIT",
    "IDEMPOTENCY_TTL",
    "IMPORT_BATCH",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_PAGE",
    "JobRunner",
    "authenticate",
    "check_idempotency_key",
    "claim",
    "create_account",
    "create_api_key",
    "create_pool",
    "delete_code",
    "delete_pool",
    "ensure_default_account",
    "export_codes",
    "fail_stale_jobs",
    "generate_codes",
    "get_code",
    "get_job",
    "get_pool",
    "import_codes",
    "list_codes",
    "list_pools",
    "purge_idempotency_keys",
    "run_generation",
    "start_generation",
    "update_pool",
]
