"""The Altcraft promo-code methods: parse the parameters, call the service, shape ``data``.

One function per method, each taking the account and the parameters and returning ``data`` (or, for
``export_all``, the pages to stream). ``loyalty_id`` is a pool of the account, ``db_id`` one of its profile
databases.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from promopool import service
from promopool.api.altcraft.request import Params
from promopool.domain import Account, Code
from promopool.domain.codes import check_expiry
from promopool.domain.errors import InvalidInput
from promopool.domain.profiles import Identity, identity
from promopool.storage import Store

MAX_IMPORT = 10_000  # codes per import request; the rest are counted in discarded_by_limit
DUPLICATED = "Promocode duplicated"


def stamp(value: datetime | None) -> str:
    """RFC 3339 in UTC to the second; empty when unset."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identity(params: Params, *, required: bool) -> Identity:
    return identity(
        matching=params.text("matching"),
        email=params.text("email"),
        phone=params.text("phone"),
        profile_id=params.text("profile_id"),
        field_name=params.text("field_name"),
        field_value=params.text("field_value"),
        required=required,
    )


async def import_codes(store: Store, account: Account, params: Params) -> Any:
    pool_id = params.integer("loyalty_id")
    values = params.texts("codes")
    kept, discarded = values[:MAX_IMPORT], max(0, len(values) - MAX_IMPORT)
    results = await service.import_each(store, account=account, pool_id=pool_id, values=kept)
    rows = []
    for result in results:
        if result.error is None:
            rows.append({"code": result.value, "error": 0, "error_text": "Successful operation"})
        elif result.error == "duplicated":
            rows.append({"code": result.value, "error": 409, "error_text": DUPLICATED})
        else:
            rows.append(
                {"code": result.value, "error": 400, "error_text": f"Invalid promocode: {result.error}"}
            )
    return {
        "results": rows,
        "inserted": sum(1 for r in results if r.error is None),
        "duplicated": sum(1 for r in results if r.error == "duplicated"),
        "discarded_by_limit": discarded,
    }


async def get_code(store: Store, account: Account, params: Params) -> Any:
    code = params.text("code", required=True)
    pool_id = params.integer("loyalty_id")
    assert code is not None
    details = await service.code_details(store, account=account, pool_id=pool_id, code=code)
    found = details.code
    now = store.clock()
    expired = found.expires_at is not None and found.expires_at <= now
    attached = details.profile is not None
    data: dict[str, Any] = {
        "code": found.value,
        "loyalty_id": found.pool_id,
        "created": stamp(found.created_at),
        "is_attached": attached,
        "is_activated": details.activated_at is not None,
        "is_expired": expired,
        "attached": stamp(found.issued_at) if attached else "",
        "activated": stamp(details.activated_at),
        "expired": stamp(found.expires_at) if expired else "",
        "expire_date": stamp(found.expires_at),
    }
    if details.profile is not None:
        data["database_id"] = details.profile.database_id
        data["profile_id"] = details.profile.external_id or ""
    return data


async def activate(store: Store, account: Account, params: Params) -> Any:
    code = params.text("code", required=True)
    pool_id = params.integer("loyalty_id")
    assert code is not None
    await service.activate_code(store, account=account, pool_id=pool_id, code=code)
    return None


def _rfc3339(value: str) -> datetime:
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise InvalidInput("expire_date must be an RFC 3339 date-time", field="expire_date") from None
    if "T" not in text.upper() or parsed.tzinfo is None:
        raise InvalidInput("expire_date must be an RFC 3339 date-time with an offset", field="expire_date")
    # The service checks the range too; checked here first so that the message names the vendor's field
    # (and before any conversion: the last hours of year 9999 at a negative offset overflow in UTC).
    return check_expiry(parsed, "expire_date")


async def update(store: Store, account: Account, params: Params) -> Any:
    code = params.text("code", required=True)
    pool_id = params.integer("loyalty_id")
    assert code is not None
    activated = params.boolean("activated")
    expire_date = params.text("expire_date")
    if activated is None and expire_date is None:
        raise InvalidInput("give activated or expire_date", field="activated")
    expires_at = None if expire_date is None else _rfc3339(expire_date)
    await service.code_details(store, account=account, pool_id=pool_id, code=code)  # 404 before any change
    # The activation first: when it is refused (not attached, used up, nothing to roll back) nothing has
    # changed yet. The expiry, checked already, can then only fail if the code is deleted meanwhile.
    if activated is True:
        await service.activate_code(store, account=account, pool_id=pool_id, code=code)
    elif activated is False:
        await service.deactivate_code(store, account=account, pool_id=pool_id, code=code)
    if expires_at is not None:
        await service.set_code_expiry(
            store, account=account, pool_id=pool_id, code=code, expires_at=expires_at
        )
    return None


async def attach(store: Store, account: Account, params: Params) -> Any:
    database_id = params.integer("db_id")
    pool_id = params.integer("loyalty_id")
    await service.attach_code(
        store,
        account=account,
        pool_id=pool_id,
        database_id=database_id,
        identity=_identity(params, required=True),
        code=params.text("code"),
    )
    return None


async def detach(store: Store, account: Account, params: Params) -> Any:
    database_id = params.integer("db_id")
    pool_id = params.integer("loyalty_id")
    code = params.text("code", required=True)
    assert code is not None
    given = _identity(params, required=False)
    await service.detach_code(
        store,
        account=account,
        pool_id=pool_id,
        database_id=database_id,
        code=code,
        identity=given if given.given else None,
    )
    return None


def export_item(code: Code) -> dict[str, Any]:
    return {"code": code.value, "attached": code.profile_id is not None, "activated": code.usage_count > 0}


async def export_pages(store: Store, account: Account, params: Params) -> AsyncIterator[list[dict[str, Any]]]:
    pool_id = params.integer("loyalty_id")
    async for page in service.code_pages(store, account=account, pool_id=pool_id):
        yield [export_item(code) for code in page]


METHODS: dict[str, Callable[[Store, Account, Params], Awaitable[Any]]] = {
    "import": import_codes,
    "get": get_code,
    "activate": activate,
    "update": update,
    "attach": attach,
    "detach": detach,
}
