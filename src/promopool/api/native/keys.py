"""/v1/keys: the account's API keys: create (the secret shown once), list (never a secret), revoke.

Rotating a key is creating a new one, moving the clients to it, then revoking the old one; the account's
only key cannot be revoked (409 ``last_api_key``), so an account is never locked out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import JSONBody, PathParameter

from promopool import service
from promopool.api.deps import MAX_ID, AccountDep, IdempotencyKey, StoreDep, no_content, replayed_headers
from promopool.api.native.openapi import BEARER, KEYED, NO_CONTENT, Documented, error_responses
from promopool.api.native.paging import Cursor, Limit, encode_cursor, id_after
from promopool.api.native.schemas import Name
from promopool.domain import ApiKeyInfo, NewApiKey

KeyId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="The API key's id (as listed).")]


class KeyCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    read_only: bool = False


class KeyOut(msgspec.Struct):
    id: int
    name: str
    read_only: bool
    fingerprint: str  # the first hex digits of the key's SHA-256: tells keys apart, grants nothing
    created_at: datetime
    last_used_at: datetime | None  # to about a minute, plus the server's auth_cache_seconds

    @classmethod
    def of(cls, key: ApiKeyInfo) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            read_only=key.read_only,
            fingerprint=key.fingerprint,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
        )


class NewKeyOut(KeyOut):
    # The secret: in the first answer only, never stored; null in a replay (Idempotency-Key), which can only
    # show the key's metadata.
    api_key: str | None

    @classmethod
    def made(cls, new: NewApiKey | ApiKeyInfo) -> NewKeyOut:
        key, secret = (new.key, new.api_key) if isinstance(new, NewApiKey) else (new, None)
        return cls(**msgspec.structs.asdict(KeyOut.of(key)), api_key=secret)


class KeyList(msgspec.Struct):
    keys: list[KeyOut]
    next_cursor: str | None = None  # pass back as `cursor` for the next page; null on the last
    has_more: bool = False


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    security = BEARER

    @get(
        "/",
        summary="List the account's API keys, oldest first (never their secrets; cursor-paged)",
        responses=error_responses(400),
        operation_class=Documented,
    )
    async def list_keys(
        self, store: StoreDep, account: AccountDep, limit: Limit = 100, cursor: Cursor = None
    ) -> KeyList:
        page = await service.list_keys_page(store, account=account, after=id_after(cursor), limit=limit)
        return KeyList(
            keys=[KeyOut.of(key) for key in page.items],
            next_cursor=encode_cursor(page.items[-1].id) if page.has_more else None,
            has_more=page.has_more,
        )

    @post(
        "/",
        status_code=201,
        summary="Create an API key; its secret is in this answer only",
        description="The secret (`api_key`) is shown in this answer only: it is never stored. With an"
        " `Idempotency-Key`, the same request again creates no key and answers the first key's metadata"
        " (201, `Idempotent-Replayed: true`) with `api_key` null: the secret cannot be shown twice. A"
        " client that lost the first answer revokes that key (its `id`) and creates another. Without a key a"
        " retry creates a second key.",
        responses=error_responses(400, 403, 413, 422, write=KEYED),
        operation_class=Documented,
    )
    async def create_key(
        self,
        store: StoreDep,
        account: AccountDep,
        data: JSONBody[KeyCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[NewKeyOut]:
        new = await service.create_key_once(
            store, account=account, name=data.name, read_only=data.read_only, idempotency_key=idempotency_key
        )
        return Response(NewKeyOut.made(new.value), status_code=201, headers=replayed_headers(new.replayed))

    @delete(
        "/{key_id:int}",
        summary="Revoke an API key",
        description="Every server refuses the key (and its SuperSaaS checksum) within its"
        " `auth_cache_seconds`; admin sessions opened with it end. The account's only key cannot be revoked"
        " (409 `last_api_key`): create its replacement first. Without an `Idempotency-Key` a key revoked"
        " already answers 404; with one, a retry gets the first answer (204, `Idempotent-Replayed: true`).",
        status_code=204,
        responses={**NO_CONTENT, **error_responses(400, 403, 404, 409, 422, write=KEYED)},
        operation_class=Documented,
    )
    async def revoke_key(
        self, store: StoreDep, account: AccountDep, key_id: KeyId, idempotency_key: IdempotencyKey = None
    ) -> Response[None]:
        revoked = await service.revoke_key_once(
            store, account=account, key_id=key_id, idempotency_key=idempotency_key
        )
        return no_content(revoked.replayed)
