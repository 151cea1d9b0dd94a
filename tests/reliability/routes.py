"""Every route of the whole app, found in its route table, and how each family of routes takes credentials.

A vendor dialect joins the isolation tests by adding one line to CREDENTIALS (how its requests carry an
account's credentials) and, if its paths name resources by new parameters, lines to PATH_VALUES; its
routes are then discovered and attacked like the native ones. A route no entry covers fails
test_every_route_is_covered, so none can be forgotten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.conftest import Tenant

# Routes anyone may call: liveness, readiness, the API's description, and the Prometheus scrape (an
# operators' endpoint: open unless PROMOPOOL_METRICS_TOKEN is set, docs/operations.md; the token is
# tested in tests/test_metrics.py).
PUBLIC = re.compile(r"^/(health(/ready)?|openapi\.json|docs(/.*)?|metrics)$")

# Routes whose isolation has tests of their own, because their credential is a signed-in session rather
# than something a request carries alone: the admin pages (tests/test_admin.py signs in as another account
# and checks each page and form refuses the owner's pools, and that pages need a session), and the front
# page, which only redirects to them (tests/test_admin_layout.py).
SEPARATELY_TESTED = re.compile(r"^/(admin(/.*)?)?$")

# How a request of each family presents an account's credentials (httpx request arguments), by path prefix.
CREDENTIALS: dict[str, Callable[[Tenant], dict[str, Any]]] = {
    "/v1/": lambda t: {"headers": {"Authorization": f"Bearer {t.api_key}"}},
    # SuperSaaS: HTTP Basic with the account's name and an API key, as its official clients send.
    "/api/promotions": lambda t: {"auth": (t.account.name, t.api_key)},
    # PersonaClick: the shop's public id and secret in the query string.
    "/promo_codes": lambda t: {"params": {"shop_id": t.account.public_key, "shop_secret": t.api_key}},
    # Altcraft: the token (an API key) as a Bearer header; the body and the query work too.
    "/api/v1.1/promocodes/": lambda t: {"headers": {"Authorization": f"Bearer {t.api_key}"}},
}

# How each family refuses a request that carries no valid account credentials (PersonaClick, as the vendor:
# 403 for a missing or wrong secret, 404 when a required parameter such as shop_id is missing).
# Altcraft: 401 "API token required", 403 "access denied" for a wrong one.
REFUSED: dict[str, set[int]] = {
    "/v1/": {401},
    "/api/promotions": {401},
    "/promo_codes": {403, 404},
    "/api/v1.1/promocodes/": {401, 403},
}

# Credentials that belong to no account, per family.
NO_ACCOUNT: dict[str, list[dict[str, Any]]] = {
    "/v1/": [
        {},
        {"headers": {"Authorization": "Bearer pp_" + "0" * 43}},
        {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
        {"headers": {"Authorization": "Bearer"}},
    ],
    "/api/promotions": [
        {},
        {"auth": ("nobody", "pp_" + "0" * 43)},
        {"params": {"account": "nobody", "api_key": "pp_" + "0" * 43}},
        {"headers": {"Authorization": "Bearer pp_" + "0" * 43}},
    ],
    "/promo_codes": [
        {},
        {"params": {"shop_id": "0" * 32, "shop_secret": "pp_" + "0" * 43}},
        {"params": {"shop_id": "0" * 32}},
    ],
    "/api/v1.1/promocodes/": [
        {},
        {"headers": {"Authorization": "Bearer pp_" + "0" * 43}},
        {"params": {"token": "pp_" + "0" * 43}},
    ],
}

# What a path parameter is set to: the owner's resource, so that another account's request names it.
PATH_VALUES: dict[str, Callable[[Tenant], str]] = {
    "pool_id": lambda t: str(t.pool.id),
    "code": lambda t: "CODE000",
    # The owner's first redemption, lease and job: owner_resources() creates them, in an empty database.
    "redemption_id": lambda t: "1",
    "lease_id": lambda t: "1",
    "job_id": lambda t: "1",
    "key_id": lambda t: "1",  # the owner's API key: the first of an empty database (the owner is made first)
    "recipient": lambda t: "customer-42",  # owner_resources() claims the owner's code for it
    "method": lambda t: "get",  # Altcraft's promocodes/<method>: `get` names the owner's program and code
}

# Bodies for routes that need one to get past validation (keyed by method and route template).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/pools"): {"json": {"name": "intruder-pool"}},
    ("POST", "/v1/pools/{pool_id:int}/codes"): {"json": ["INTRUDER"]},
    ("PATCH", "/v1/pools/{pool_id:int}"): {"json": {"name": "owned", "max_uses": 99}},
    ("PATCH", "/v1/pools/{pool_id:int}/codes/{code:str}"): {"json": {"description": "owned"}},
    ("POST", "/v1/pools/{pool_id:int}/generate"): {"json": {"count": 1}},
    # PersonaClick names the owner's list (the first pool of an empty database) in the query or body.
    ("POST", "/promo_codes"): {"json": {"id": 1, "codes": ["INTRUDER"]}},
    ("GET", "/promo_codes/fetch"): {"params": {"id": "1", "did": "device-1"}},
    ("DELETE", "/promo_codes/purge"): {"json": {"id": 1}},
    ("DELETE", "/promo_codes/delete"): {"json": {"promo_code_list_id": 1, "codes": ["CODE000"]}},
    ("POST", "/api/v1.1/promocodes/{method:str}"): {"json": {"loyalty_id": 1, "code": "CODE000"}},
}

# The methods a vendor path serves; its other methods exist only to answer the vendor's own 405 (to anyone:
# a 405 reveals nothing and changes nothing).
SERVED_METHODS: dict[str, set[str]] = {
    "/api/promotions.json": {"GET", "POST"},
    "/api/promotions.xml": {"GET", "POST"},
    "/promo_codes": {"GET", "POST"},
    "/promo_codes/fetch": {"GET"},
    "/promo_codes/purge": {"DELETE"},
    "/promo_codes/delete": {"DELETE"},
    "/api/v1.1/promocodes/{method:str}": {"POST"},
}


@dataclass(frozen=True)
class Route:
    method: str
    template: str

    @property
    def public(self) -> bool:
        return PUBLIC.match(self.template) is not None

    @property
    def separately_tested(self) -> bool:
        return SEPARATELY_TESTED.match(self.template) is not None

    @property
    def family(self) -> str | None:
        return next((prefix for prefix in CREDENTIALS if self.template.startswith(prefix)), None)

    @property
    def only_refuses(self) -> bool:
        """A method the path does not serve: the route answers 405 whoever asks."""
        served = SERVED_METHODS.get(self.template)
        return served is not None and self.method not in served

    @property
    def names_a_resource(self) -> bool:
        return "{" in self.template

    def path(self, owner: Tenant) -> str:
        def value(match: re.Match[str]) -> str:
            return PATH_VALUES[match.group(1)](owner)

        return re.sub(r"\{(\w+)(?::\w+)?\}", value, self.template)

    def request(self, owner: Tenant, credentials: dict[str, Any]) -> dict[str, Any]:
        """httpx.request arguments: this route, naming ``owner``'s resources, with ``credentials``."""
        body = BODIES.get((self.method, self.template), {})
        args: dict[str, Any] = {"method": self.method, "url": self.path(owner), **body}
        for name, value in credentials.items():  # query parameters from both sides are combined
            args[name] = {**args[name], **value} if name == "params" and name in args else value
        return args


def discover(app: Litestar) -> list[Route]:
    """Every (method, path) the app serves, HEAD and OPTIONS aside (the framework answers those)."""
    return [
        Route(method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method in sorted(route.methods)
        if method not in ("HEAD", "OPTIONS")
    ]
