"""The examples of the OpenAPI document, by operation id: the request body each operation takes and the
answer of each success status (openapi.Documented puts them in; the error examples are per status, in
openapi.ERROR_EXAMPLES). tests/test_openapi_examples.py checks that every native operation has them and that
they match their schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"

AT = "2026-03-01T09:30:00Z"
LATER = "2026-03-01T09:35:00Z"


@dataclass(frozen=True)
class Examples:
    """``requests``: media type -> example body; ``responses``: status -> example answer (JSON, unless the
    status has one media type that is not)."""

    requests: dict[str, Any] = field(default_factory=dict)
    responses: dict[int, Any] = field(default_factory=dict)


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
}
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
    "V1PoolsListPools": Examples(responses={200: {"pools": [POOL]}}),
    "V1PoolsCreatePool": Examples(
        requests={JSON: {"name": "spring-sale", "max_uses": 1}},
        responses={
            201: {**POOL, "counts": dict.fromkeys(COUNTS, 0)},
            200: {**POOL, "counts": dict.fromkeys(COUNTS, 0)},
        },
    ),
    "V1PoolsPoolIdGetPool": Examples(responses={200: POOL}),
    "V1PoolsPoolIdUpdatePool": Examples(
        requests={JSON: {"expires_at": "2026-04-01T00:00:00Z", "per_profile_limit": 1}},
        responses={200: {**POOL, "expires_at": "2026-04-01T00:00:00Z", "per_profile_limit": 1}},
    ),
    "V1PoolsPoolIdDeletePool": Examples(responses={204: None}),
    "V1PoolsPoolIdClaimClaim": Examples(responses={200: CLAIM}),
    "V1PoolsPoolIdCodesGetCode": Examples(responses={200: CODE}),
    "V1PoolsPoolIdCodesDeleteCode": Examples(responses={204: None}),
    "V1PoolsPoolIdCodesListCodes": Examples(
        responses={200: {"codes": [CODE], "next_cursor": "U1BSSU5HLTdLUTMtWE05UA"}}
    ),
    "V1PoolsPoolIdCodesImportCodes": Examples(
        requests={
            JSON: {"codes": ["SPRING-0001", "SPRING-0002", "SPRING-0003"]},
            "text/plain": "SPRING-0001\nSPRING-0002\nSPRING-0003\n",
            "text/csv": "SPRING-0001\nSPRING-0002\nSPRING-0003\n",
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
        responses={200: {"redemptions": [REDEMPTION], "next_after": None}}
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
