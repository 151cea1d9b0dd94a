"""The examples of the OpenAPI document, by operation id: the request body each operation takes and the
answer of each success status (openapi.Documented puts them in; the native error examples are per status, in
openapi.ERROR_EXAMPLES); and the parameters and body of the PersonaClick routes, which read them from the
request themselves. tests/test_openapi_examples.py checks that every native operation has examples and that
every example matches its schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from litestar.openapi.spec import OpenAPIType, Parameter, Schema

JSON = "application/json"

AT = "2026-03-01T09:30:00Z"
LATER = "2026-03-01T09:35:00Z"


@dataclass(frozen=True)
class Examples:
    """``requests``: media type -> example body; ``responses``: status -> example answer (a dict by media
    type where the status has several); ``query``: the query parameters a handler reads itself; ``body``: the
    JSON body it reads itself."""

    requests: dict[str, Any] = field(default_factory=dict)
    responses: dict[int, Any] = field(default_factory=dict)
    query: tuple[Parameter, ...] = ()
    body: Schema | None = None


COUNTS = {"available": 9_997, "issued": 3, "redeemed": 0, "total": 10_000}
POOL = {
    "id": 7,
    "name": "spring-sale",
    "max_uses": 1,
    "per_profile_limit": None,
    "expires_at": None,
    "public_fetch": False,
    "case_insensitive": False,
    "ignore_separators": False,
    "holder_only": False,
    "counts": COUNTS,
    "created_at": AT,
    "low_stock_threshold": None,
    "webhook_url": None,
    "fallback_code": None,
    "fallback_pool_id": None,
    "fallback_since": None,
    "valid_for_seconds": None,
}
# An empty pool falling back to pool 8, its claimed codes valid for 30 days
FALLBACK = {"fallback_pool_id": 8, "valid_for_seconds": 2_592_000}
ALERT = {"low_stock_threshold": 500, "webhook_url": "https://shop.example/hooks/promopool"}
CODE = {
    "code": "SPRING-7KQ3-XM9P",
    "pool_id": 7,
    "state": "issued",
    "description": "",
    "usage_count": 0,
    "expires_at": None,
    "issued_at": LATER,
    "created_at": AT,
}
KEY = {
    "id": 3,
    "name": "checkout",
    "read_only": False,
    "fingerprint": "5e0b3f8a71c2",
    "created_at": AT,
    "last_used_at": LATER,
}
CLAIM = {"code": "SPRING-7KQ3-XM9P", "pool_id": 7, "issued_at": LATER, "replayed": False, "lease": None}
LEASE = {
    "id": 31,
    "state": "active",
    "expires_at": "2026-03-01T09:45:00Z",
    "created_at": LATER,
    "ended_at": None,
}
REDEMPTION = {
    "id": 12,
    "code": "SPRING-7KQ3-XM9P",
    "pool_id": 7,
    "profile": "customer-4411",
    "order_ref": "order-20260301-0042",
    "amount": "59.90",
    "metadata": {"channel": "web"},
    "created_at": LATER,
    "rolled_back_at": None,
}
REDEEM = {
    "code": "SPRING-7KQ3-XM9P",
    "pool_id": 7,
    "profile": "customer-4411",
    "order_ref": "order-20260301-0042",
    "amount": "59.90",
    "metadata": {"channel": "web"},
}
JOB = {
    "id": 3,
    "kind": "generate",
    "pool_id": 7,
    "state": "succeeded",
    "total": 1000,
    "done": 1000,
    "error": None,
    "params": {"count": 1000, "pattern": "SPRING-####-####"},
    "created_at": AT,
    "updated_at": LATER,
    "finished_at": LATER,
}

EXAMPLES: dict[str, Examples] = {
    "HealthHealth": Examples(responses={200: {"status": "ok"}}),
    "HealthReadyReady": Examples(
        responses={
            200: {"status": "ok", "database": "ok"},
            503: {"status": "unavailable", "database": "unreachable"},
        }
    ),
    "V1AccountGetAccount": Examples(
        responses={200: {"id": 1, "name": "default", "public_key": "pk_4f2a9c81e0", "created_at": AT}}
    ),
    "V1PoolsListPools": Examples(
        responses={200: {"pools": [POOL], "next_cursor": "Nw", "has_more": True}}  # "Nw": after pool 7
    ),
    "V1KeysListKeys": Examples(
        responses={
            200: {
                "keys": [
                    KEY,
                    {
                        **KEY,
                        "id": 4,
                        "name": "reporting",
                        "read_only": True,
                        "fingerprint": "9c41d07be2a3",
                        "last_used_at": None,
                    },
                ],
                "next_cursor": None,
                "has_more": False,
            }
        }
    ),
    "V1KeysCreateKey": Examples(
        requests={JSON: {"name": "reporting", "read_only": True}},
        responses={
            201: {
                **KEY,
                "id": 4,
                "name": "reporting",
                "read_only": True,
                "fingerprint": "9c41d07be2a3",
                "last_used_at": None,
                "api_key": "pp_Qm9uam91ciBsZSBtb25kZSwgY2VjaSBlc3QgdW4gZXhlbXBsZQ",
            }
        },
    ),
    "V1KeysKeyIdRevokeKey": Examples(responses={204: None}),
    "V1PoolsCreatePool": Examples(
        requests={JSON: {"name": "spring-sale", "max_uses": 1}},
        responses={
            201: {**POOL, "counts": dict.fromkeys(COUNTS, 0)},
            200: {**POOL, "counts": dict.fromkeys(COUNTS, 0)},
        },
    ),
    "V1PoolsPoolIdGetPool": Examples(responses={200: POOL}),
    "V1PoolsPoolIdUpdatePool": Examples(
        requests={JSON: {"expires_at": "2026-04-01T00:00:00Z", "per_profile_limit": 1, **ALERT, **FALLBACK}},
        responses={
            200: {**POOL, "expires_at": "2026-04-01T00:00:00Z", "per_profile_limit": 1, **ALERT, **FALLBACK}
        },
    ),
    "V1PoolsPoolIdWebhookTestSendTestEvent": Examples(
        responses={
            202: {
                "id": 58,
                "event": "test",
                "url": ALERT["webhook_url"],
                "state": "pending",
                "attempts": 0,
                "created_at": LATER,
            }
        }
    ),
    "V1PoolsPoolIdDeletePool": Examples(responses={204: None}),
    # (the 200 shows the bulk answer, to the bulk request; without a body, or with a recipient, the answer is
    # CLAIM's shape; docs/native-api.md shows the recipients' form)
    "V1PoolsPoolIdClaimClaim": Examples(
        requests={JSON: {"count": 3}},
        responses={
            200: {
                "pool_id": 7,
                "count": 3,
                "codes": ["SPRING-7KQ3-XM9P", "SPRING-M4TW-82HC", "SPRING-Q9XD-6JRA"],
                "issued_at": LATER,
                "replayed": False,
            }
        },
    ),
    "V1PoolsPoolIdCodesGetCode": Examples(responses={200: CODE}),
    "V1PoolsPoolIdCodesUpdateCode": Examples(
        requests={JSON: {"description": "10% off, spring 2026"}},
        responses={200: {**CODE, "description": "10% off, spring 2026"}},
    ),
    "V1PoolsPoolIdCodesDeleteCode": Examples(responses={204: None}),
    "V1PoolsPoolIdCodesListCodes": Examples(
        responses={200: {"codes": [CODE], "next_cursor": "U1BSSU5HLTdLUTMtWE05UA", "has_more": True}}
    ),
    "V1PoolsPoolIdCodesImportCodes": Examples(
        requests={
            JSON: {"codes": ["SPRING-0001", "SPRING-0002", "SPRING-0003"]},
            "text/plain": "SPRING-0001\nSPRING-0002\nSPRING-0003\n",
            "text/csv": "code,description\nSPRING-0001,10% off\nSPRING-0002,10% off\nSPRING-0003,\n",
        },
        responses={200: {"inserted": 3, "duplicates": 0, "invalid": 0, "invalid_samples": []}},
    ),
    "V1PoolsPoolIdExportExportCodes": Examples(
        responses={
            200: {
                "text/csv": "code,state,usage_count\r\nSPRING-0001,issued,0\r\n",
                "application/x-ndjson": '{"code":"SPRING-0001","state":"issued","usage_count":0}\n',
            }
        }
    ),
    "V1RedemptionsRedemptionIdGetRedemption": Examples(responses={200: REDEMPTION}),
    "V1PoolsPoolIdCodesRedemptionsListRedemptions": Examples(
        responses={
            200: {"redemptions": [REDEMPTION], "next_cursor": None, "has_more": False, "next_after": None}
        }
    ),
    "V1CodesRedeemRedeem": Examples(
        requests={JSON: REDEEM},
        responses={
            201: {"redemption": REDEMPTION, "usage_count": 1, "replayed": False},
            200: {"redemption": REDEMPTION, "usage_count": 1, "replayed": True},
        },
    ),
    "V1RedemptionsRedemptionIdRollbackRollback": Examples(
        responses={
            200: {
                "redemption": {**REDEMPTION, "rolled_back_at": "2026-03-02T10:00:00Z"},
                "usage_count": 0,
                "replayed": False,
            }
        }
    ),
    "V1CodesValidateValidate": Examples(
        requests={JSON: {"code": "SPRING-7KQ3-XM9P", "pool_id": 7, "profile": "customer-4411"}},
        responses={
            200: {
                "valid": True,
                "code": "SPRING-7KQ3-XM9P",
                "pool_id": 7,
                "usage_count": 0,
                "uses_left": 1,
                "profile_uses_left": None,
                "expires_at": None,
            }
        },
    ),
    "V1LeasesLeaseIdGetLease": Examples(responses={200: LEASE}),
    "V1RecipientsCodesRecipientCodes": Examples(
        responses={
            200: {
                "recipient": "customer-42",
                "codes": [
                    {
                        "pool_id": 7,
                        "code": "SPRING-7KQ3-XM9P",
                        "state": "issued",
                        "issued_at": LATER,
                        "lease": None,
                    },
                    {"pool_id": 9, "code": "VIP-4HT8", "state": "redeemed", "issued_at": AT, "lease": None},
                ],
                "next_cursor": "9",
                "has_more": True,
            }
        }
    ),
    "V1LeasesLeaseIdConfirmConfirm": Examples(
        responses={200: {**LEASE, "state": "confirmed", "ended_at": "2026-03-01T09:40:00Z"}}
    ),
    "V1LeasesLeaseIdReleaseRelease": Examples(
        responses={200: {**LEASE, "state": "released", "ended_at": "2026-03-01T09:40:00Z"}}
    ),
    "V1PoolsPoolIdGenerateGenerate": Examples(
        requests={JSON: {"count": 1000, "pattern": "SPRING-####-####"}},
        responses={
            201: JOB,
            202: {**JOB, "total": 500_000, "done": 20_000, "state": "running", "finished_at": None},
        },
    ),
    "V1JobsJobIdGetJob": Examples(responses={200: JOB}),
}


def _query(
    name: str, description: str, *, required: bool = False, kind: OpenAPIType = OpenAPIType.STRING
) -> Parameter:
    return Parameter(
        name=name, param_in="query", required=required, description=description, schema=Schema(type=kind)
    )


ABOUT_SHOP_ID = "The shop's public key (the account's `public_key`)."
ABOUT_LIST_ID = "The list (pool) id."
CODES = Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING))
# Upload, purge and delete take their fields from a JSON body or, where the body lacks them, the query.
IN_QUERY_TOO = "Or in the JSON body, which wins."


def _body(**fields: Schema) -> Schema:
    return Schema(
        type=OpenAPIType.OBJECT,
        properties={
            "shop_id": Schema(type=OpenAPIType.STRING),
            "shop_secret": Schema(type=OpenAPIType.STRING),
            **fields,
        },
    )


def _list_id() -> Schema:
    return Schema(
        one_of=[Schema(type=OpenAPIType.INTEGER), Schema(type=OpenAPIType.STRING, pattern="^[0-9]+$")]
    )


SHOP = (
    _query("shop_id", f"{ABOUT_SHOP_ID} {IN_QUERY_TOO}"),
    _query("shop_secret", f"One of the account's API keys. {IN_QUERY_TOO}"),
)

EXAMPLES |= {
    "PromoCodesListLists": Examples(
        query=(
            _query("shop_id", ABOUT_SHOP_ID, required=True),
            _query("shop_secret", "One of the account's API keys.", required=True),
            _query("active", "`1` (or `true`): only lists with a free code; `0` (or `false`): every list."),
            _query("include", "Comma-separated list ids: only these."),
            _query("exclude", "Comma-separated list ids: not these."),
            _query("offset", "Lists to skip (0).", kind=OpenAPIType.INTEGER),
            _query("limit", "At most this many lists (1000).", kind=OpenAPIType.INTEGER),
        ),
        responses={200: [{"id": 7, "name": "spring-sale", "available": 9_997}]},
    ),
    "PromoCodesUpload": Examples(
        query=(*SHOP, _query("id", f"{ABOUT_LIST_ID} {IN_QUERY_TOO}")),
        body=_body(id=_list_id(), codes=CODES),
        requests={
            JSON: {
                "shop_id": "pk_4f2a9c81e0",
                "shop_secret": "pp_…",
                "id": 7,
                "codes": ["SPRING-0001", "SPRING-0002"],
            }
        },
        responses={200: {"status": "success", "message": "2 promo codes added, 0 non-unique skipped"}},
    ),
    "PromoCodesFetchFetch": Examples(
        query=(
            _query("shop_id", ABOUT_SHOP_ID, required=True),
            _query("id", ABOUT_LIST_ID, required=True, kind=OpenAPIType.INTEGER),
            _query(
                "shop_secret",
                "With it (a backend): a new code on every call. Without it (the front end):"
                " only from a pool with public fetch, rate-limited per address.",
            ),
            _query("did", "Front end: the visitor's device id; one code per device."),
        ),
        responses={200: {"code": "SPRING-7KQ3-XM9P"}},
    ),
    "PromoCodesPurgePurge": Examples(
        query=(*SHOP, _query("id", f"{ABOUT_LIST_ID} {IN_QUERY_TOO}")),
        body=_body(id=_list_id()),
        requests={JSON: {"shop_id": "pk_4f2a9c81e0", "shop_secret": "pp_…", "id": 7}},
        responses={200: {"status": "success"}},
    ),
    "PromoCodesDeleteDeleteCodes": Examples(
        query=(*SHOP, _query("promo_code_list_id", f"{ABOUT_LIST_ID} {IN_QUERY_TOO}")),
        body=_body(promo_code_list_id=_list_id(), codes=CODES),
        requests={
            JSON: {
                "shop_id": "pk_4f2a9c81e0",
                "shop_secret": "pp_…",
                "promo_code_list_id": 7,
                "codes": ["SPRING-0001"],
            }
        },
        responses={200: {"status": "success", "payload": {"deleted_count": 1, "not_found_count": 0}}},
    ),
}
