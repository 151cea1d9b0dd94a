"""/v1/keys: the account's API keys: create (the secret shown once), list (never a secret), revoke.

Rotating a key is creating a new one, moving the clients to it, then revoking the old one; the account's
only key cannot be revoked (409 ``last_api_key``), so an account is never locked out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import JSONBody, PathParameter

from promopool import service
from promopool.api.deps import MAX_ID, AccountDep, StoreDep
from promopool.api.native.openapi import BEARER, REPEATABLE, Documented, error_responses
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
    api_key: str  # the secret: in this answer only, never stored

    @classmethod
    def made(cls, new: NewApiKey) -> NewKeyOut:
        shown = KeyOut.of(new.key)
        return cls(**msgspec.structs.asdict(shown), api_key=new.api_key)


class KeyList(msgspec.Struct):
    keys: list[KeyOut]


class KeysController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    security = BEARER

    @get(
        "/",
        summary="List the account's API keys (never their secrets)",
        responses=error_responses(),
        operation_class=Documented,
    )
    async def list_keys(self, store: StoreDep, account: AccountDep) -> KeyList:
        return KeyList(keys=[KeyOut.of(key) for key in await service.list_keys(store, account=account)])

    @post(
        "/",
        status_code=201,
        summary="Create an API key; its secret is in this answer only",
        responses=error_responses(400, 403, 413, write="A retry creates another key: revoke the extra one."),
        operation_class=Documented,
    )
    async def create_key(self, store: StoreDep, account: AccountDep, data: JSONBody[KeyCreate]) -> NewKeyOut:
        new = await service.create_key(store, account=account, name=data.name, read_only=data.read_only)
        return NewKeyOut.made(new)

    @delete(
        "/{key_id:int}",
        summary="Revoke an API key",
        description="Every server refuses the key (and its SuperSaaS checksum) within its"
        " `auth_cache_seconds`; admin sessions opened with it end. The account's only key cannot be revoked"
        " (409 `last_api_key`): create its replacement first.",
        responses=error_responses(
            400, 403, 404, 409, write=REPEATABLE.format("a key revoked already answers 404")
        ),
        operation_class=Documented,
    )
    async def revoke_key(self, store: StoreDep, account: AccountDep, key_id: KeyId) -> None:
        await service.revoke_key(store, account=account, key_id=key_id)
