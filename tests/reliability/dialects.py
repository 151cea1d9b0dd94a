"""The vendor dialects' answers, checked against their documented envelopes, and requests built byte by byte.

Shared by the dialect fuzz (test_fuzz_dialects.py) and the dialect hostile-input matrix
(test_hostile_dialects.py). Each ``*_answer`` function asserts that a response is one the dialect may send
(docs/dialects/, vendor-apis.md): an error only with a documented status and in the vendor's own error
envelope, a success in its success shape. It returns whether the request was refused, so the caller can
check that a refusal changed nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_from_bytes
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
import httpx

from tests.conftest import Tenant

# The statuses each dialect documents for errors, and (SuperSaaS) the error codes each may carry.
SUPERSAAS_ERRORS = {
    400: {"invalid_input", "invalid_code"},
    401: {"unauthenticated"},
    404: {"code_not_found"},
    405: {"method_not_allowed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    422: {"already_exists"},
}
PERSONACLICK_ERRORS = {400, 403, 404, 405, 413, 429}
ALTCRAFT_ERRORS = {400, 401, 403, 404, 409}
ALTCRAFT_SUCCESS = "Successful operation"

SUPERSAAS = "/api/promotions.json"
ALTCRAFT = "/api/v1.1/promocodes"


def credentials(tenant: Tenant) -> dict[str, Any]:
    """Each dialect's way to present ``tenant``'s credentials: headers, or (PersonaClick) a query string."""
    basic = base64.b64encode(f"{tenant.account.name}:{tenant.api_key}".encode()).decode()
    return {
        "supersaas": {"Authorization": f"Basic {basic}"},
        "personaclick": f"shop_id={tenant.account.public_key}&shop_secret={tenant.api_key}",
        "altcraft": {"Authorization": f"Bearer {tenant.api_key}"},
    }


def _xml(response: httpx.Response) -> Element:
    assert response.headers["content-type"].startswith("application/xml"), response.headers
    return SafeET.fromstring(response.content)  # our own answer, but parsed as safely as any other


def _json(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return response.json()


def supersaas_answer(response: httpx.Response) -> bool:
    """SuperSaaS: ``{"errors": [{"code", "title"}]}`` (Rails XML for a ``.xml`` path) with a documented
    status and code, ``WWW-Authenticate`` on a 401; a success is an array, an object, or a 201 with
    ``Location``. True when refused."""
    status = response.status_code
    xml = response.request.url.path.endswith(".xml")
    if status >= 400:
        if xml:
            root = _xml(response)
            assert root.tag == "errors" and root.attrib == {"type": "array"} and len(root) == 1
            (error,) = root
            assert error.tag == "error" and [child.tag for child in error] == ["code", "title"]
            code, title = error[0].text, error[1].text
        else:
            body = _json(response)
            assert set(body) == {"errors"} and len(body["errors"]) == 1, body
            assert set(body["errors"][0]) == {"code", "title"}, body
            code, title = body["errors"][0]["code"], body["errors"][0]["title"]
        assert code in SUPERSAAS_ERRORS.get(status, set()), (status, code, title)
        assert isinstance(title, str) and title, (status, code)
        if status == 401:
            assert response.headers["www-authenticate"] == 'Basic realm="promopool"'
        return True
    assert status in (200, 201), status
    if status == 201:
        assert response.headers["location"].startswith("http://promopool.test/api/promotions.")
    if xml:
        root = _xml(response)
        items = list(root) if root.tag == "promotions" else [root]
        assert root.tag in ("promotions", "promotion"), root.tag
        for item in items:
            assert [child.tag for child in item] == ["code", "description", "usage"], SafeET.tostring(item)
    else:
        body = _json(response)
        for item in body if isinstance(body, list) else [body]:
            assert set(item) == {"code", "description", "usage"}, item
    return False


def personaclick_answer(response: httpx.Response) -> bool:
    """PersonaClick: ``{"status": "error", "message"}`` with a documented status; a success is a JSON
    array of lists, ``{"code"}`` or ``{"status": "success", …}``. True when refused."""
    status = response.status_code
    body = _json(response)
    if status >= 400:
        assert status in PERSONACLICK_ERRORS, (status, body)
        assert set(body) == {"status", "message"} and body["status"] == "error", body
        assert isinstance(body["message"], str) and body["message"], body
        return True
    assert status == 200, status
    if isinstance(body, list):
        assert all(set(item) == {"id", "name", "available"} for item in body), body
    else:
        assert set(body) in ({"code"}, {"status"}, {"status", "message"}, {"status", "payload"}), body
        assert body.get("status", "success") == "success", body
    return False


@dataclass
class AltcraftEnvelope:
    data: Any  # JSON: the value; XML: the <data> elements
    error: int
    error_text: str
    xml: bool


def altcraft_envelope(response: httpx.Response) -> AltcraftEnvelope:
    """The envelope, in JSON or (by the content type) XML: ``data``, ``error``, ``error_text`` and nothing
    else; the HTTP status equals ``error`` (200 for 0)."""
    if response.headers["content-type"].startswith("application/xml"):
        root = _xml(response)
        tags = [child.tag for child in root]
        assert root.tag == "xml" and tags[-2:] == ["error", "error_text"], tags
        assert set(tags[:-2]) == {"data"}, tags
        found = AltcraftEnvelope(root.findall("data"), int(root[-2].text or ""), root[-1].text or "", True)
    else:
        body = _json(response)
        assert set(body) == {"data", "error", "error_text"}, body
        found = AltcraftEnvelope(body["data"], body["error"], body["error_text"], False)
    assert isinstance(found.error, int) and isinstance(found.error_text, str)
    assert response.status_code == (found.error or 200), (response.status_code, found)
    return found


def altcraft_answer(response: httpx.Response) -> bool:
    """Altcraft: always the envelope; an error with a documented code, empty data and a text. True when
    refused."""
    found = altcraft_envelope(response)
    request = response.request
    if "format" not in request.url.params and b"format" not in request.content:
        assert not found.xml, "no format was asked for: the answer must be JSON"
    if found.error == 0:
        assert found.error_text == ALTCRAFT_SUCCESS, found
        return False
    assert found.error in ALTCRAFT_ERRORS, found
    assert found.error_text and found.error_text != ALTCRAFT_SUCCESS, found
    if found.xml:
        assert len(found.data) == 1 and len(found.data[0]) == 0 and not found.data[0].text, found
    else:
        assert found.data is None, found
    return True


Value = str | bytes  # bytes are sent as they are, percent-encoded: a way to send what is not UTF-8


def query_string(pairs: list[tuple[str, Value]]) -> str:
    return "&".join(
        f"{quote(name, safe='')}="
        + (quote_from_bytes(value, safe="") if isinstance(value, bytes) else quote(value, safe=""))
        for name, value in pairs
    )


@dataclass
class Call:
    """One request, as sent: its query string built by hand so that any bytes can be in it."""

    method: str
    path: str
    query: list[tuple[str, Value]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None

    @property
    def url(self) -> str:
        return self.path + ("?" + query_string(self.query) if self.query else "")

    async def send(self, client: httpx.AsyncClient) -> httpx.Response:
        # A header carries latin-1; what it cannot carry becomes "?", as a client library would send it.
        headers = {name: value.encode("latin-1", "replace") for name, value in self.headers.items()}
        return await client.request(self.method, self.url, headers=headers, content=self.content)

    def __str__(self) -> str:
        content = "" if self.content is None else f" body={self.content[:300]!r}"
        return f"{self.method} {self.url[:300]} headers={self.headers}{content}"
