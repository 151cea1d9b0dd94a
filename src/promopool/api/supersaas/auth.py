"""Who is calling: the SuperSaaS dialect's four ways to present an account name with a credential.

Tried in this order, the first one present deciding alone (a wrong credential is never retried another way):

1. ``Authorization: Basic`` — user = account name, password = API key (all the official clients send);
2. ``Authorization: Bearer <api key>`` with ``account`` (or ``account_name``) in the query;
3. ``api_key`` with ``account`` / ``account_name`` in the query;
4. ``checksum`` = hex MD5 of account name + API key, with ``account`` / ``account_name`` in the query.

An API key must belong to the named account. Every failure is the same 401, which does not say whether the
name or the credential was wrong.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from litestar import Request

from promopool import service
from promopool.api.auth import Authenticator
from promopool.api.deps import StoreDep
from promopool.domain import Account
from promopool.domain.errors import Unauthenticated

WRONG = "wrong account name or API key"


def _query_account(request: Request[Any, Any, Any]) -> str | None:
    query = request.query_params
    return query.get("account") or query.get("account_name") or None


def _basic(value: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Unauthenticated("malformed HTTP Basic credentials") from None
    name, colon, api_key = decoded.partition(":")
    if not colon:
        raise Unauthenticated("malformed HTTP Basic credentials")
    return name, api_key


async def _by_key(authenticator: Authenticator, name: str | None, api_key: str) -> Account:
    if not name:
        raise Unauthenticated("the account name is missing: send `account` in the query")
    try:
        account = await authenticator.account_for_key(api_key)
    except Unauthenticated:
        raise Unauthenticated(WRONG) from None
    # Names are unique, so this is the comparison of account ids.
    if account.name != name:
        raise Unauthenticated(WRONG)
    return account


async def provide_supersaas_account(request: Request[Any, Any, Any], store: StoreDep) -> Account:
    """The caller's account (the dialect routes' ``account`` dependency); Unauthenticated otherwise.

    ``store`` only orders it after the store (see ``api.deps``): the authenticator reads keys from it."""
    authenticator: Authenticator = request.app.state.auth
    named = _query_account(request)
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() == "basic":
            name, password = _basic(value)
            if named is not None and named != name:
                raise Unauthenticated(WRONG)
            return await _by_key(authenticator, name, password)
        if scheme.lower() == "bearer" and value.strip():
            return await _by_key(authenticator, named, value.strip())
        raise Unauthenticated("Authorization must be 'Basic <credentials>' or 'Bearer <api key>'")
    query = request.query_params
    api_key: str | None = query.get("api_key")  # (the query's values are typed Any)
    if api_key:
        return await _by_key(authenticator, named, api_key)
    checksum: str | None = query.get("checksum")
    if checksum:
        if not named:
            raise Unauthenticated("the account name is missing: send `account` in the query")
        return await service.authenticate_checksum(
            request.app.state.store, account_name=named, checksum=checksum
        )
    raise Unauthenticated(
        "credentials missing: use HTTP Basic (account name, API key), or `account` with `api_key`, a Bearer"
        " key or `checksum`"
    )
