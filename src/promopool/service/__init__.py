"""The use cases. Every dialect, the CLI and the admin pages call these; business rules live here only.

Functions are keyword-only and take the store first. Each checks the caller's account owns what it touches:
another account's pool is indistinguishable from a missing one. One module per area; everything public is
re-exported here, so callers write ``service.claim(...)``.
"""

from promopool.service.accounts import (
    DEFAULT_ACCOUNT_NAME,
    authenticate,
    authenticate_checksum,
    create_account,
    create_api_key,
    create_key,
    ensure_default_account,
    list_keys,
    revoke_key,
)
from promopool.service.activity import CodeHistory, PoolTrend, code_history, pool_trend
from promopool.service.alerts import (
    create_pool_with_alert,
    get_low_stock_alert,
    list_deliveries,
    list_low_stock_alerts,
    rotate_webhook_secret,
    send_test_event,
    set_low_stock_alert,
    update_pool_and_alert,
    webhook_secret,
)
from promopool.service.bulk import delete_codes, purge_pool, select_pools
from promopool.service.claims import (
    IDEMPOTENCY_TTL,
    MAX_IDEMPOTENCY_KEY,
    check_idempotency_key,
    claim,
    claim_many,
    purge_idempotency_keys,
    recorded_claim_many,
)
from promopool.service.codes import IMPORT_BATCH, MAX_PAGE, delete_code, get_code, import_codes, list_codes
from promopool.service.copying import CopyReport, copy_database
from promopool.service.devices import (
    account_by_public_key,
    authenticate_shop,
    fetch_for_device,
)
from promopool.service.export import EXPORT_BATCH, export_codes
from promopool.service.fallback import claim_many_with_fallback, claim_with_fallback
from promopool.service.generation import (
    GENERATE_BATCH,
    GENERATE_SYNC_LIMIT,
    generate_codes,
    run_generation,
    start_generation,
)
from promopool.service.jobs import JobRunner, fail_stale_jobs, get_job
from promopool.service.leases import confirm_lease, expire_leases, get_lease, release_lease
from promopool.service.pools import (
    create_pool,
    create_pool_once,
    delete_pool,
    get_pool,
    list_pools,
    update_pool,
)
from promopool.service.profiles import (
    CodeDetails,
    ImportResult,
    activate_code,
    attach_code,
    code_details,
    code_pages,
    create_profile_database,
    deactivate_code,
    detach_code,
    ensure_profile,
    find_profile,
    get_profile_database,
    import_each,
    set_code_expiry,
)
from promopool.service.promotions import (
    PROMOTION_PAGE,
    duplicate_promotion,
    find_promotion,
    promotion_pages,
)
from promopool.service.redemptions import (
    get_redemption,
    list_redemptions,
    redeem,
    rollback_redemption,
    validate_code,
)
from promopool.service.webhooks import WebhookSender, webhook_body

__all__ = [
    "DEFAULT_ACCOUNT_NAME",
    "EXPORT_BATCH",
    "GENERATE_BATCH",
    "GENERATE_SYNC_LIMIT",
    "IDEMPOTENCY_TTL",
    "IMPORT_BATCH",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_PAGE",
    "PROMOTION_PAGE",
    "CodeDetails",
    "CodeHistory",
    "CopyReport",
    "ImportResult",
    "JobRunner",
    "PoolTrend",
    "WebhookSender",
    "account_by_public_key",
    "activate_code",
    "attach_code",
    "authenticate",
    "authenticate_checksum",
    "authenticate_shop",
    "check_idempotency_key",
    "claim",
    "claim_many",
    "claim_many_with_fallback",
    "claim_with_fallback",
    "code_details",
    "code_history",
    "code_pages",
    "confirm_lease",
    "copy_database",
    "create_account",
    "create_api_key",
    "create_key",
    "create_pool",
    "create_pool_once",
    "create_pool_with_alert",
    "create_profile_database",
    "deactivate_code",
    "delete_code",
    "delete_codes",
    "delete_pool",
    "detach_code",
    "duplicate_promotion",
    "ensure_default_account",
    "ensure_profile",
    "expire_leases",
    "export_codes",
    "fail_stale_jobs",
    "fetch_for_device",
    "find_profile",
    "find_promotion",
    "generate_codes",
    "get_code",
    "get_job",
    "get_lease",
    "get_low_stock_alert",
    "get_pool",
    "get_profile_database",
    "get_redemption",
    "import_codes",
    "import_each",
    "list_codes",
    "list_deliveries",
    "list_keys",
    "list_low_stock_alerts",
    "list_pools",
    "list_redemptions",
    "pool_trend",
    "promotion_pages",
    "purge_idempotency_keys",
    "purge_pool",
    "recorded_claim_many",
    "redeem",
    "release_lease",
    "revoke_key",
    "rollback_redemption",
    "rotate_webhook_secret",
    "run_generation",
    "select_pools",
    "send_test_event",
    "set_code_expiry",
    "set_low_stock_alert",
    "start_generation",
    "update_pool",
    "update_pool_and_alert",
    "validate_code",
    "webhook_body",
    "webhook_secret",
]
