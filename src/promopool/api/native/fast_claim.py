"""The plain claim, ``POST /v1/pools/{pool_id}/claim``, answered without the framework's request machinery.

The claim is the route that runs thousands of times a second, and Litestar's per-request work for it
(signature model, dependency resolution, parameter validation, the response object) cost more CPU than
the claim itself: 100 of the 126 µs a claim took in process. This ASGI wrapper answers the plain case
itself, with the same service call and the same rendering as the documented route in ``codes.py``
(``ClaimOut``, ``api.errors.domain_error``), and passes every other request to the app untouched, so that
the route's own validation answers it: a query string (``lease_seconds``), a request body, an
Authorization the authenticator does not accept, an Idempotency-Key the route would refuse, a pool id out
of range. Nothing is claimed before that decision, so passing on never claims twice.

``tests/test_fast_claim.py`` sends the same requests both ways and compares the answers.
"""

from __future__ import annotations

import logging
import re

import msgspec

from promopool import service
from promopool.api.auth import Authenticator
from promopool.api.deps import IDEMPOTENCY_KEY_PATTERN, MAX_ID
from promopool.api.errors import domain_error, error_body
from promopool.api.native.schemas import ClaimOut
from promopool.api.observe import ASGIApp, Receive, Scope, Send
from promopool.domain.errors import PromopoolError
from promopool.storage import Store

log = logging.getLogger("promopool")

ROUTE = "/v1/pools/{pool_id}/claim"
_PATH = re.compile(r"/v1/pools/([1-9][0-9]{0,15})/claim")
_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
_encode = msgspec.json.Encoder().encode


def _plain_request(scope: Scope) -> tuple[int, str, str | None] | None:
    """(pool id, Authorization, Idempotency-Key) of a plain claim; None for anything else."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
        return None
    match = _PATH.fullmatch(scope["path"])
    if match is None or int(match[1]) > MAX_ID:
        return None
    authorization = key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value.decode("latin-1")
        elif name == b"idempotency-key":
            if key is not None:
                return None
            key = value.decode("latin-1")
        elif (name == b"content-length" and value != b"0") or name == b"transfer-encoding":
            return None  # a body: the route decides what that means
    if authorization is None:
        return None
    if key is not None and not (len(key) <= service.MAX_IDEMPOTENCY_KEY and _KEY.match(key)):
        return None
    return int(match[1]), authorization, key


def fast_claims(app: ASGIApp, *, store: Store, auth: Authenticator) -> ASGIApp:
    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        plain = _plain_request(scope)
        if plain is None:
            await app(scope, receive, send)
            return
        pool_id, authorization, key = plain
        try:
            account = await auth.account_for_header(authorization)
        except PromopoolError:  # refused (or the database away): the route answers, in its own words
            await app(scope, receive, send)
            return
        scope["path_template"] = ROUTE  # for the request metrics and the access log (api.observe)
        headers: dict[str, str] = {}
        try:
            claimed = await service.claim_with_fallback(
                store, account=account, pool_id=pool_id, idempotency_key=key
            )
        except PromopoolError as exc:
            status, body, headers = domain_error(exc)
            payload = _encode(body)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            status, payload = 500, _encode(error_body("internal_error", "internal server error"))
        else:
            status, payload = 200, _encode(ClaimOut.of(claimed))
            if claimed.replayed:
                headers["Idempotent-Replayed"] = "true"
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        raw += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": payload})

    return handler
