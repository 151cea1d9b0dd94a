"""SQL metacharacters in every string field of every vendor dialect, on both engines.

They are valid data, not an attack to refuse (as on the native API, test_hostile_input.py): stored and
found verbatim, matched exactly (no wildcard matches anything), refused only where they are credentials
that belong to no one, and touching nothing of another account.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import quote

import defusedxml.ElementTree as SafeET
import httpx
import pytest

from promopool import service
from promopool.storage import Store
from tests.conftest import Tenant, make_tenant
from tests.reliability.conftest import Tally
from tests.reliability.dialects import ALTCRAFT, SUPERSAAS, altcraft_envelope, credentials
from tests.reliability.hostile import SQL
from tests.reliability.integrity import table_dump

pytestmark = [pytest.mark.reliability]

# Where a profile is named by each of them, in each matching mode (a phone keeps only its digits).
MODES = [
    {"matching": "email", "email": "{}@example.com"},
    {"matching": "phone", "phone": "+7 900 {}1"},
    {"matching": "profile_id", "profile_id": "{}"},
    {"matching": "custom", "field_name": "card", "field_value": "{}"},
]


def q(value: str) -> str:
    return quote(value, safe="")


async def test_sql_metacharacters_are_data(
    client: httpx.AsyncClient, store: Store, tenant: Tenant, database_url: str, tally: Tally
) -> None:
    await make_tenant(store, "bystander", ["BY-1", "BY-2"])
    theirs = [
        line for line in (await table_dump(database_url)).splitlines() if "BY-" in line or "bystander" in line
    ]
    db = await service.create_profile_database(store, account=tenant.account, name="crm")
    await service.update_pool(store, account=tenant.account, pool_id=tenant.pool.id, public_fetch=True)
    found = credentials(tenant)
    basic, shop, bearer = found["supersaas"], found["personaclick"], found["altcraft"]
    pool, sent = tenant.pool.id, Counter[str]()

    async def call(method: str, url: str, status: int = 200, **kwargs: Any) -> httpx.Response:
        response = await client.request(method, url, **kwargs)
        assert response.status_code == status, (method, url, kwargs, response.text)
        sent["requests"] += 1
        return response

    supersaas, personaclick, altcraft = SQL[:7], SQL[7:14], SQL[14:]  # "%" and "_" are codes from here on
    # SuperSaaS: new promotions by duplicate, found by id and promotion_code, listed; as credentials, 401
    for value in supersaas:
        made = await call(
            "POST", SUPERSAAS, 201, json={"id": value, "template_code": "CODE001"}, headers=basic
        )
        assert made.json()["code"] == value
        assert (await call("GET", f"{SUPERSAAS}?id={q(value)}", headers=basic)).json()["code"] == value
        xml = await call("GET", f"/api/promotions.xml?promotion_code={q(value)}", headers=basic)
        assert [element.text for element in SafeET.fromstring(xml.content).iter("code")] == [value]
        await call("GET", f"{SUPERSAAS}?id={q(value + '%')}", 404, headers=basic)
        await call("GET", f"{SUPERSAAS}?account={q(value)}&api_key={q(value)}", 401)
        await call("GET", f"{SUPERSAAS}?account={q(value)}&checksum={q(value)}", 401)
    listed = (await call("GET", SUPERSAAS, headers=basic)).json()
    assert set(supersaas) <= {item["code"] for item in listed}
    # PersonaClick: uploaded, fetched for devices named by them (one code each), deleted by value
    added = await call("POST", f"/promo_codes?{shop}", json={"id": pool, "codes": personaclick})
    assert added.json()["message"] == f"{len(personaclick)} promo codes added, 0 non-unique skipped"
    for value in personaclick:
        device = {"shop_id": tenant.account.public_key, "id": str(pool), "did": value}
        first = await call("GET", "/promo_codes/fetch", params=device)
        assert (await call("GET", "/promo_codes/fetch", params=device)).json() == first.json()
        await call("GET", "/promo_codes", 403, params={"shop_id": value, "shop_secret": value})
    named = {"promo_code_list_id": pool, "codes": [*personaclick, "%%", "_%_"]}
    gone = await call("DELETE", f"/promo_codes/delete?{shop}", json=named)
    assert gone.json()["payload"] == {"deleted_count": len(personaclick), "not_found_count": 2}
    # Altcraft: imported, found by get, attached to and detached from profiles they name; as tokens, 403
    done = await call(
        "POST", f"{ALTCRAFT}/import", json={"loyalty_id": pool, "codes": altcraft}, headers=bearer
    )
    assert altcraft_envelope(done).data["inserted"] == len(altcraft)
    for i, value in enumerate(altcraft):
        item = {"loyalty_id": pool, "code": value}
        got = await call("POST", f"{ALTCRAFT}/get", json=item, headers=bearer)
        assert altcraft_envelope(got).data["code"] == value
        who = {name: text.format(value) for name, text in MODES[i % len(MODES)].items()}
        await call("POST", f"{ALTCRAFT}/attach", json={**item, "db_id": db.id, **who}, headers=bearer)
        await call("POST", f"{ALTCRAFT}/detach", json={**item, "db_id": db.id, **who}, headers=bearer)
        await call("POST", f"{ALTCRAFT}/get", 403, json={**item, "token": value})
    for probe in ("%%", "_%_", "*", "' OR 'x'='x"):  # wildcards and injections match nothing
        await call("POST", f"{ALTCRAFT}/get", 404, json={"loyalty_id": pool, "code": probe}, headers=bearer)
        await call("GET", f"{SUPERSAAS}?id={q(probe)}", 404, headers=basic)
    exported = await call("POST", f"{ALTCRAFT}/export_all", json={"loyalty_id": pool}, headers=bearer)
    assert {*altcraft, *supersaas} <= {item["code"] for item in altcraft_envelope(exported).data}
    # the other account's rows, byte for byte
    after = (await table_dump(database_url)).splitlines()
    assert [line for line in after if "BY-" in line or "bystander" in line] == theirs
    engine = database_url.partition(":")[0]
    tally.add(f"hostile dialects ({engine}): SQL metacharacters in string fields", sent["requests"])
