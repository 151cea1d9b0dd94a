"""A SuperSaaS Promotion API client that behaves as the vendor's official clients do (vendor-apis.md §3).

Written from the spec's description, not from their code: HTTP Basic only (account name, API key); every
request sends ``Accept`` and ``Content-Type: application/json`` and ``User-Agent: SSS/…``; codes are
checked against ``^[a-zA-Z0-9]+$`` before sending; ``promotion(code)`` sends ``promotion_code=`` and iterates
the answer as a list; ``duplicate`` sends its parameters as a JSON body and returns the ``Location`` of the
201; any other status raises with the ``errors`` the server sent; a body is read only when the answer
carries a ``Content-Length`` (the Node.js client's way: a list without one fails to iterate).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import httpx

CODE = re.compile(r"^[a-zA-Z0-9]+$")


class SuperSaasError(Exception):
    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"HTTP {status}: {errors}")
        self.status = status
        self.errors = errors


@dataclass(frozen=True)
class Promotion:
    code: str
    description: str
    usage: int


class OfficialStyleClient:
    def __init__(self, http: httpx.AsyncClient, account_name: str, api_key: str) -> None:
        self._http = http
        credentials = base64.b64encode(f"{account_name}:{api_key}".encode()).decode()
        self._headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": "SSS/2.0.0 Python/3.11 API/2",
            "Authorization": f"Basic {credentials}",
        }

    async def _request(self, method: str, query: dict[str, Any], body: dict[str, str] | None = None) -> Any:
        response = await self._http.request(
            method,
            "/api/promotions.json",
            params={k: v for k, v in query.items() if v is not None},
            content=None if body is None else httpx.Request("POST", "/", json=body).content,
            headers=self._headers,
        )
        if response.status_code == 201 and method == "POST":
            return response.headers["Location"]
        if response.status_code >= 400:
            raise SuperSaasError(response.status_code, response.json()["errors"])
        if int(response.headers.get("content-length", "0")) <= 0:
            return None  # as the Node.js client: no Content-Length, no body read
        return response.json()

    @staticmethod
    def _check(code: str) -> str:
        if not CODE.match(code):
            raise ValueError(f"invalid promotion code {code!r}")
        return code

    async def list(self, limit: int | None = None, offset: int | None = None) -> list[Promotion]:
        answer = await self._request("GET", {"limit": limit, "offset": offset})
        return [Promotion(**item) for item in answer]

    async def promotion(self, code: str) -> list[Promotion]:
        answer = await self._request("GET", {"promotion_code": self._check(code)})
        return [Promotion(**item) for item in answer]

    async def duplicate(self, new_code: str, template_code: str) -> str:
        body = {"id": self._check(new_code), "template_code": self._check(template_code)}
        location: str = await self._request("POST", {}, body)
        return location
